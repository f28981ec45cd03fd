// Package schedule is the release's scheduler job: it runs the backup
// errand's run on a cron schedule, in a time zone, never two at once, and
// says which scheduled runs did not happen.
package schedule

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
	_ "time/tzdata" // time zones without the stemcell's zoneinfo

	"github.com/robfig/cron/v3"
)

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
// same ctx, so it unlocks and cleans up before Loop returns. It fails
// when the schedule gives no next time: robfig/cron's zero time is in the
// past, and waiting for it would start runs back to back.
func (s Scheduler) Loop(ctx context.Context) error {
	s.logf("started: %s", s.What)
	now := s.Clock.Now().In(s.Location)
	if last, ok := s.LastStart(); ok {
		s.missed(ctx, s.Schedule.Next(last.In(s.Location)), now,
			fmt.Sprintf("the scheduler was not running (the last run started %s)", s.format(last)))
	}
	for {
		due := s.Schedule.Next(now)
		if due.IsZero() {
			err := fmt.Errorf("the schedule gives no next time after %s: stopping rather than running back to back", s.format(now))
			s.logf("stopped: %s", err)
			return err
		}
		s.logf("next run at %s", s.format(due))
		if s.Clock.Wait(ctx, due) != nil {
			s.logf("stopped")
			return nil
		}
		s.logf("starting the run scheduled at %s", s.format(due))
		if err := s.Run(ctx); err != nil {
			s.logf("the run scheduled at %s failed: %s", s.format(due), strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
		} else {
			s.logf("the run scheduled at %s succeeded", s.format(due))
		}
		if ctx.Err() != nil {
			s.logf("stopped")
			return nil
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
