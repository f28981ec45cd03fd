// Package schedule is the release's scheduler job: it runs the backup
// errand's run on a cron schedule, in a time zone, never two at once, and
// says which scheduled runs did not happen.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
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

// ErrRunTimeout is the cause a run's context is cancelled with when it
// reaches RunTimeout.
var ErrRunTimeout = errors.New("the scheduler stopped the run at its run_timeout")

// Scheduler runs Run at each time Schedule gives, in Location.
type Scheduler struct {
	// What is run and when, as the log's first line says it.
	What     string
	Schedule cron.Schedule
	Location *time.Location
	// Run is one backup run (the backup errand's); its error is logged.
	Run func(ctx context.Context) error
	// RunTimeout, when not 0, stops a run that goes on longer: its
	// context is cancelled, with ErrRunTimeout as the cause, as monit
	// stop would, so it unlocks and cleans up.
	RunTimeout time.Duration
	// LastStart is when the newest run started, when one is known (the
	// errand's last report): a time due since then was missed.
	LastStart func() (time.Time, bool)
	// Missed is told of each stretch of scheduled times that got no run.
	Missed func(ctx context.Context, first time.Time, count int, why string)
	// TimedOut is told of a run RunTimeout stopped: a stopped run posts
	// nothing of its own.
	TimedOut func(ctx context.Context, started, ended time.Time, err error)
	Clock    Clock
	// Out is the log; the scheduler writes it while a run does too.
	Out io.Writer
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
		first := s.Schedule.Next(last.In(s.Location))
		why := fmt.Sprintf("the scheduler was not running (the last run started %s)", s.format(last))
		s.reportMissed(ctx, first, s.listMissed(first, now, why), why)
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
		s.runOnce(ctx, due)
		if ctx.Err() != nil {
			s.logf("stopped")
			return nil
		}
		now = s.Clock.Now().In(s.Location)
	}
}

// runOnce runs the run scheduled at due and returns when it has: never
// two at once, and the next one starts on schedule. The scheduled times
// that pass meanwhile get no run of their own; the first is reported as
// missed when it comes (a hung run is heard of on its next time, not
// only once it returns), the rest of the stretch when the run returns.
func (s Scheduler) runOnce(ctx context.Context, due time.Time) {
	s.logf("starting the run scheduled at %s", s.format(due))
	started := s.Clock.Now()
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	watchCtx, endWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if s.RunTimeout > 0 {
		wg.Go(func() {
			if s.Clock.Wait(watchCtx, started.Add(s.RunTimeout)) == nil {
				s.logf("the run scheduled at %s is still going after run_timeout (%s): stopping it", s.format(due), s.RunTimeout)
				stop(fmt.Errorf("%w (%s)", ErrRunTimeout, s.RunTimeout))
			}
		})
	}
	var o overrun
	wg.Go(func() { o = s.watch(ctx, watchCtx, due) })
	err := s.Run(runCtx)
	timedOut := errors.Is(context.Cause(runCtx), ErrRunTimeout)
	endWatch()
	wg.Wait()
	s.result(ctx, due, started, err, timedOut)
	if ctx.Err() != nil {
		return
	}
	why := fmt.Sprintf("the run scheduled at %s was still going", s.format(due))
	count, first := s.listMissed(o.next, s.Clock.Now().In(s.Location), why), o.next
	if o.said > 0 { // the first was reported when it came: the rest of the stretch
		count, first = count+o.said-1, s.Schedule.Next(o.first)
	}
	s.reportMissed(ctx, first, count, why)
}

// result logs how the run scheduled at due ended, and reports one that
// RunTimeout stopped.
func (s Scheduler) result(ctx context.Context, due, started time.Time, err error, timedOut bool) {
	switch {
	case err == nil:
		s.logf("the run scheduled at %s succeeded", s.format(due))
	case timedOut:
		err = fmt.Errorf("the run scheduled at %s was stopped at its run_timeout (%s): %w", s.format(due), s.RunTimeout, err)
		s.logf("%s", oneLine(err))
		if s.TimedOut != nil && ctx.Err() == nil {
			s.TimedOut(ctx, started, s.Clock.Now(), err)
		}
	default:
		s.logf("the run scheduled at %s failed: %s", s.format(due), oneLine(err))
	}
}

// overrun is what watch said of the scheduled times a run went on past.
type overrun struct {
	first time.Time // the first scheduled time said, when said > 0
	next  time.Time // the first not said
	said  int       // how many were
}

// watch says each scheduled time after due that comes while the run
// goes on (until watchCtx ends), and reports the first at once.
func (s Scheduler) watch(ctx, watchCtx context.Context, due time.Time) overrun {
	why := fmt.Sprintf("the run scheduled at %s is still going", s.format(due))
	o := overrun{next: s.Schedule.Next(due)}
	for !o.next.IsZero() && s.Clock.Wait(watchCtx, o.next) == nil {
		s.logf("missed the run scheduled at %s: %s", s.format(o.next), why)
		if o.said == 0 {
			o.first = o.next
			s.reportMissed(ctx, o.next, 1, why)
		}
		o.said++
		o.next = s.Schedule.Next(o.next)
	}
	return o
}

// listMissed logs the scheduled times from first up to now, a few one by
// one and the rest counted, and returns how many there are.
func (s Scheduler) listMissed(first, now time.Time, why string) int {
	count := 0
	for t := first; !t.After(now) && !t.IsZero(); t = s.Schedule.Next(t) {
		if count < maxMissedListed {
			s.logf("missed the run scheduled at %s: %s", s.format(t), why)
		}
		count++
	}
	if count > maxMissedListed {
		s.logf("missed %d more scheduled runs up to %s", count-maxMissedListed, s.format(now))
	}
	return count
}

// reportMissed tells Missed of a stretch of count scheduled times from
// first that got no run.
func (s Scheduler) reportMissed(ctx context.Context, first time.Time, count int, why string) {
	if count > 0 && s.Missed != nil {
		s.Missed(ctx, first, count, why)
	}
}

func (s Scheduler) format(t time.Time) string {
	return t.In(s.Location).Format("2006-01-02 15:04:05 MST")
}

// oneLine is err's text on one line, for the log.
func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

func (s Scheduler) logf(format string, args ...any) {
	fmt.Fprintf(s.Out, "[%s] scheduler: %s\n", s.Clock.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}
