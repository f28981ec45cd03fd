package schedule

import (
	"time"

	"github.com/robfig/cron/v3"
)

// wallClock reads a cron expression on the wall clock of loc: a time a
// DST change skips runs as the same minutes past the jump (02:30 becomes
// 03:30), and one it repeats runs once, at its first instant, as cron
// runs it (cron.SpecSchedule alone skips the first and runs the second
// twice). @every stays real durations.
type wallClock struct {
	spec *cron.SpecSchedule
	loc  *time.Location
}

// sameWall says whether t (in its zone) reads as the wall clock f.
func sameWall(t, f time.Time) bool {
	return t.Year() == f.Year() && t.YearDay() == f.YearDay() && t.Hour() == f.Hour() && t.Minute() == f.Minute() && t.Second() == f.Second()
}

func (w wallClock) Next(t time.Time) time.Time {
	// The expression is computed on a zone without DST (UTC) holding the
	// same wall clock, then placed back in loc.
	l := t.In(w.loc)
	f := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
	for {
		if f = w.spec.Next(f); f.IsZero() {
			return f
		}
		n := time.Date(f.Year(), f.Month(), f.Day(), f.Hour(), f.Minute(), f.Second(), 0, w.loc)
		// A wall clock time a DST change repeats is two instants: Go's
		// time.Date may give the later one.
		_, before := n.Add(-3 * time.Hour).Zone()
		if e := time.Date(f.Year(), f.Month(), f.Day(), f.Hour(), f.Minute(), f.Second(), 0, time.FixedZone("", before)); e.Before(n) && e.After(t) && sameWall(e.In(w.loc), f) {
			n = e.In(w.loc)
		}
		if n.After(t) {
			return n
		}
	}
}
