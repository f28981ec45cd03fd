// Package schedule is the release's scheduler job: it runs the backup
// errand's run on a cron schedule, in a time zone, never two at once, and
// says which scheduled runs did not happen.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	_ "time/tzdata" // time zones without the stemcell's zoneinfo

	"github.com/robfig/cron/v3"
	yaml "go.yaml.in/yaml/v2"
)

// Config is the scheduler job's config file.
type Config struct {
	// Schedule is a cron expression (minute hour day-of-month month
	// day-of-week), a descriptor (@daily, @hourly) or @every <duration>.
	Schedule string `yaml:"schedule"`
	// TimeZone is an IANA name (Europe/Berlin); empty: UTC.
	TimeZone string `yaml:"time_zone"`
	// BackupConfig is the colocated backup errand's config: what is backed
	// up, where, and how, is the errand's.
	BackupConfig string `yaml:"backup_config"`
}

// LoadConfig reads and checks the scheduler's config file.
func LoadConfig(path string) (Config, error) {
	var c Config
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("reading the scheduler config: %w", err)
	}
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return c, fmt.Errorf("parsing the scheduler config: %w", err)
	}
	if c.BackupConfig == "" {
		return c, errors.New("backup_config is required: the backup errand's config file the scheduler runs")
	}
	_, _, err = c.Parse()
	return c, err
}

// Parse returns the schedule and its time zone.
func (c Config) Parse() (cron.Schedule, *time.Location, error) {
	spec := strings.TrimSpace(c.Schedule)
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, nil, errors.New("schedule: give the time zone as time_zone, not in the expression")
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %q: %w (e.g. \"0 2 * * *\", daily at 02:00, or @every 6h)", c.Schedule, err)
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil || c.TimeZone == "Local" {
		return nil, nil, fmt.Errorf("time_zone %q is not a time zone name (e.g. UTC, Europe/Berlin, America/New_York)", c.TimeZone)
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		sched = wallClock{spec: spec, loc: loc}
	}
	return sched, loc, nil
}

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

// Clock is the scheduler's time: tests give it a fake one.
type Clock interface {
	Now() time.Time
	// Wait returns at t, or with ctx's error when ctx ends first.
	Wait(ctx context.Context, t time.Time) error
}

// WallClock is the real time.
type WallClock struct{}

// Now is time.Now.
func (WallClock) Now() time.Time { return time.Now() }

// Wait sleeps until t.
func (WallClock) Wait(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Scheduler runs Run at each time Schedule gives, in Location.
type Scheduler struct {
	// What is run and when, as the log's first line says it.
	What     string
	Schedule cron.Schedule
	Location *time.Location
	// Run is one backup run (the backup errand's); its error is logged.
	Run func(ctx context.Context) error
	// LastStart is when the newest run started, when one is known (the
	// errand's last report): a time due since then was missed.
	LastStart func() (time.Time, bool)
	// Missed is told of each stretch of scheduled times that got no run.
	Missed func(ctx context.Context, first time.Time, count int, why string)
	Clock  Clock
	Out    io.Writer
}

// maxMissedListed bounds the missed times logged one by one (a schedule
// of @every 1m behind a day-long run misses many).
const maxMissedListed = 5

// Loop runs until ctx ends (monit stop); a run in progress is given the
// same ctx, so it unlocks and cleans up before Loop returns.
func (s Scheduler) Loop(ctx context.Context) {
	s.logf("started: %s", s.What)
	now := s.Clock.Now().In(s.Location)
	if last, ok := s.LastStart(); ok {
		s.missed(ctx, s.Schedule.Next(last.In(s.Location)), now,
			fmt.Sprintf("the scheduler was not running (the last run started %s)", s.format(last)))
	}
	for {
		due := s.Schedule.Next(now)
		s.logf("next run at %s", s.format(due))
		if s.Clock.Wait(ctx, due) != nil {
			s.logf("stopped")
			return
		}
		s.logf("starting the run scheduled at %s", s.format(due))
		if err := s.Run(ctx); err != nil {
			s.logf("the run scheduled at %s failed: %s", s.format(due), strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
		} else {
			s.logf("the run scheduled at %s succeeded", s.format(due))
		}
		if ctx.Err() != nil {
			s.logf("stopped")
			return
		}
		now = s.Clock.Now().In(s.Location)
		// Times due while this run went on get no run of their own: never
		// two at once, and the next one starts on schedule.
		s.missed(ctx, s.Schedule.Next(due), now, fmt.Sprintf("the run scheduled at %s was still going", s.format(due)))
	}
}

// missed logs and reports the scheduled times from first up to now.
func (s Scheduler) missed(ctx context.Context, first, now time.Time, why string) {
	count := 0
	for t := first; !t.After(now) && !t.IsZero(); t = s.Schedule.Next(t) {
		if count < maxMissedListed {
			s.logf("missed the run scheduled at %s: %s", s.format(t), why)
		}
		count++
	}
	if count == 0 {
		return
	}
	if count > maxMissedListed {
		s.logf("missed %d more scheduled runs up to %s", count-maxMissedListed, s.format(now))
	}
	if s.Missed != nil {
		s.Missed(ctx, first, count, why)
	}
}

func (s Scheduler) format(t time.Time) string {
	return t.In(s.Location).Format("2006-01-02 15:04:05 MST")
}

func (s Scheduler) logf(format string, args ...any) {
	fmt.Fprintf(s.Out, "[%s] scheduler: %s\n", s.Clock.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}
