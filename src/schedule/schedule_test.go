package schedule_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/schedule"
)

type missedCall struct {
	first time.Time
	count int
	why   string
}

type timedOutCall struct {
	started, ended time.Time
	err            string
}

// utc is how fakeClock.waiting lists a time.
func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

var _ = Describe("the scheduler", func() {
	var (
		clock    *fakeClock
		out      *syncBuffer
		ctx      context.Context
		cancel   context.CancelFunc
		missed   *calls[missedCall]
		timedOut *calls[timedOutCall]
		last     time.Time
	)

	BeforeEach(func() {
		out, missed, timedOut, last = &syncBuffer{}, &calls[missedCall]{}, &calls[timedOutCall]{}, time.Time{}
		ctx, cancel = context.WithCancel(context.Background())
		DeferCleanup(cancel)
	})

	scheduler := func(spec, zone string, run func(context.Context) error) schedule.Scheduler {
		sched, loc, err := schedule.Config{Schedule: spec, TimeZone: zone, MinInterval: "1s"}.Parse()
		Expect(err).NotTo(HaveOccurred())
		return schedule.Scheduler{Schedule: sched, Location: loc, Run: run, Clock: clock, Out: out,
			LastStart: func() (time.Time, bool) { return last, !last.IsZero() },
			Missed: func(_ context.Context, first time.Time, count int, why string) {
				missed.add(missedCall{first, count, why})
			},
			TimedOut: func(_ context.Context, started, ended time.Time, err error) {
				timedOut.add(timedOutCall{started, ended, err.Error()})
			}}
	}
	// loop runs s until stopped; its error comes on the channel.
	loop := func(s schedule.Scheduler) chan error {
		done := make(chan error, 1)
		go func() { done <- s.Loop(ctx) }()
		return done
	}
	// nextRun waits until the scheduler waits for its next run, and for
	// nothing else, at t (as its log says it in its zone); then it is t.
	nextRun := func(t time.Time, logged string) {
		Eventually(out.String).Should(ContainSubstring("scheduler: next run at " + logged))
		Eventually(clock.waiting).Should(Equal([]string{utc(t)}))
		clock.set(t)
	}

	It("runs at the schedule's times in its time zone, across a DST change, until stopped", func() {
		berlin, err := time.LoadLocation("Europe/Berlin")
		Expect(err).NotTo(HaveOccurred())
		clock = newFakeClock(time.Date(2026, 10, 23, 12, 0, 0, 0, berlin))
		run := newFakeRun(clock)
		done := loop(scheduler("30 2 * * *", "Europe/Berlin", run.run))
		// 25 October: CEST ends at 03:00, so 02:30 comes twice; it runs once,
		// at the first.
		for _, at := range []struct {
			utc    time.Time
			logged string
		}{
			{time.Date(2026, 10, 24, 0, 30, 0, 0, time.UTC), "2026-10-24 02:30:00 CEST"},
			{time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), "2026-10-25 02:30:00 CEST"},
			{time.Date(2026, 10, 26, 1, 30, 0, 0, time.UTC), "2026-10-26 02:30:00 CET"},
		} {
			nextRun(at.utc, at.logged)
			Eventually(run.started).Should(Receive(BeTemporally("==", at.utc)))
			run.release <- nil
			Eventually(out.String).Should(ContainSubstring("scheduler: the run scheduled at " + at.logged + " succeeded"))
		}
		Eventually(out.String).Should(ContainSubstring("scheduler: next run at 2026-10-27 02:30:00 CET"))
		cancel()
		Eventually(done).Should(Receive(BeNil()))
		Expect(out.String()).To(HaveSuffix("scheduler: stopped\n"))
		Expect(run.started).To(BeEmpty())
		Expect(missed.get()).To(BeEmpty())
	})

	It("runs a time the spring DST change skips when the clock jumps, not a day later", func() {
		berlin, err := time.LoadLocation("Europe/Berlin")
		Expect(err).NotTo(HaveOccurred())
		sched, _, err := schedule.Config{Schedule: "30 2 * * *", TimeZone: "Europe/Berlin"}.Parse()
		Expect(err).NotTo(HaveOccurred())
		next := sched.Next(time.Date(2026, 3, 28, 12, 0, 0, 0, berlin)) // 29 March: 02:00 CET is 03:00 CEST
		Expect(next).To(BeTemporally("==", time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)), "03:30 CEST: half an hour past the jump")
		Expect(sched.Next(next).In(berlin).Format("2006-01-02 15:04")).To(Equal("2026-03-30 02:30"))
		every, _, err := schedule.Config{Schedule: "@every 90m", TimeZone: "Europe/Berlin"}.Parse()
		Expect(err).NotTo(HaveOccurred())
		from := time.Date(2026, 3, 29, 1, 0, 0, 0, berlin)
		Expect(every.Next(from).Sub(from)).To(Equal(90*time.Minute), "@every is a real duration")
	})

	It("runs an hourly schedule once per wall clock hour when autumn repeats one", func() {
		sched, _, err := schedule.Config{Schedule: "0 * * * *", TimeZone: "Europe/Berlin"}.Parse()
		Expect(err).NotTo(HaveOccurred())
		var runs []string
		for t := time.Date(2026, 10, 24, 23, 30, 0, 0, time.UTC); len(runs) < 4; { // 01:30 CEST
			t = sched.Next(t)
			runs = append(runs, t.UTC().Format("15:04"))
		}
		// 02:00 CEST is 00:00 UTC; the repeated 02:00 (CET, 01:00 UTC) is
		// the same wall clock and is not run again; 03:00 CET is 02:00 UTC.
		Expect(runs).To(Equal([]string{"00:00", "02:00", "03:00", "04:00"}))
	})

	It("never starts a run while one goes on: reports the first time it overran as missed when it comes, the rest when it returns, and starts the next on time", func() {
		clock = newFakeClock(time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC))
		run := newFakeRun(clock)
		done := loop(scheduler("0 * * * *", "", run.run))
		at := func(hour, minute int) time.Time { return time.Date(2026, 12, 1, hour, minute, 0, 0, time.UTC) }
		nextRun(at(1, 0), "2026-12-01 01:00:00 UTC")
		Eventually(run.started).Should(Receive(BeTemporally("==", at(1, 0))))

		// Still going at 02:00: said and posted then, not once it returns.
		Eventually(clock.waiting).Should(Equal([]string{utc(at(2, 0))}))
		clock.set(at(2, 0))
		still := "the run scheduled at 2026-12-01 01:00:00 UTC is still going"
		Eventually(missed.get).Should(Equal([]missedCall{{at(2, 0), 1, still}}))
		Expect(out.String()).To(ContainSubstring("missed the run scheduled at 2026-12-01 02:00:00 UTC: " + still))
		// And at 03:00: said, and posted with the rest of the stretch.
		Eventually(clock.waiting).Should(Equal([]string{utc(at(3, 0))}))
		clock.set(at(3, 0))
		Eventually(out.String).Should(ContainSubstring("missed the run scheduled at 2026-12-01 03:00:00 UTC: " + still))
		clock.set(at(3, 30))
		Expect(run.started).To(BeEmpty(), "two runs at once")
		run.release <- errors.New("1 of 2 deployments failed: cf\nmore")

		nextRun(at(4, 0), "2026-12-01 04:00:00 UTC")
		Eventually(run.started).Should(Receive(BeTemporally("==", at(4, 0))))
		cancel()
		Eventually(done).Should(Receive(BeNil()))
		Expect(missed.get()).To(Equal([]missedCall{{at(2, 0), 1, still}, {at(3, 0), 1, "the run scheduled at 2026-12-01 01:00:00 UTC was still going"}}))
		Expect(out.String()).To(ContainSubstring("the run scheduled at 2026-12-01 01:00:00 UTC failed: 1 of 2 deployments failed: cf; more"))
		Expect(out.String()).To(ContainSubstring("the run scheduled at 2026-12-01 04:00:00 UTC failed: interrupted: context canceled"))
		Expect(run.stoppedBy()).To(Equal([]error{context.Canceled}), "monit stop's cancel, no run_timeout")
		Expect(timedOut.get()).To(BeEmpty())
	})

	It("stops a run at its run_timeout as monit stop would, reports it as failed saying why, and runs the next on time", func() {
		clock = newFakeClock(time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC))
		run := newFakeRun(clock)
		s := scheduler("0 * * * *", "", run.run)
		s.RunTimeout = 20 * time.Minute
		done := loop(s)
		at := func(hour, minute int) time.Time { return time.Date(2026, 12, 1, hour, minute, 0, 0, time.UTC) }
		nextRun(at(1, 0), "2026-12-01 01:00:00 UTC")
		Eventually(run.started).Should(Receive())
		Eventually(clock.waiting).Should(Equal([]string{utc(at(1, 20)), utc(at(2, 0))}), "the deadline and the next time")
		clock.set(at(1, 20))
		Eventually(run.stoppedBy).Should(HaveLen(1))
		Expect(run.stoppedBy()[0]).To(MatchError(schedule.ErrRunTimeout))
		Expect(run.stoppedBy()[0]).To(MatchError("the scheduler stopped the run at its run_timeout (20m0s)"))

		nextRun(at(2, 0), "2026-12-01 02:00:00 UTC")
		Eventually(run.started).Should(Receive(BeTemporally("==", at(2, 0))))
		Eventually(clock.waiting).Should(Equal([]string{utc(at(2, 20)), utc(at(3, 0))}), "a deadline of its own")
		clock.set(at(2, 10))
		run.release <- nil
		Eventually(out.String).Should(ContainSubstring("the run scheduled at 2026-12-01 02:00:00 UTC succeeded"))
		Eventually(out.String).Should(ContainSubstring("scheduler: next run at 2026-12-01 03:00:00 UTC"))
		cancel()
		Eventually(done).Should(Receive(BeNil()))

		stopped := "the run scheduled at 2026-12-01 01:00:00 UTC was stopped at its run_timeout (20m0s): interrupted: context canceled"
		Expect(timedOut.get()).To(Equal([]timedOutCall{{at(1, 0), at(1, 20), stopped}}))
		Expect(out.String()).To(ContainSubstring("scheduler: the run scheduled at 2026-12-01 01:00:00 UTC is still going after run_timeout (20m0s): stopping it\n"))
		Expect(out.String()).To(ContainSubstring("scheduler: " + stopped + "\n"))
		Expect(missed.get()).To(BeEmpty())
		Expect(run.stoppedBy()).To(HaveLen(1), "the 02:00 run was not stopped at 02:10")
	})

	It("says at start which runs it missed while it was not running, listing a few and counting the rest", func() {
		clock = newFakeClock(time.Date(2026, 12, 1, 12, 0, 30, 0, time.UTC))
		last = time.Date(2026, 12, 1, 11, 50, 0, 0, time.UTC)
		done := loop(scheduler("@every 1m", "", func(context.Context) error { Fail("ran"); return nil }))
		Eventually(out.String).Should(ContainSubstring("scheduler: next run at 2026-12-01 12:01:30 UTC"))
		cancel()
		Eventually(done).Should(Receive(BeNil()))
		missed := missed.get()
		Expect(missed).To(HaveLen(1))
		Expect(missed[0].first).To(Equal(time.Date(2026, 12, 1, 11, 51, 0, 0, time.UTC)))
		Expect(missed[0].count).To(Equal(10))
		Expect(missed[0].why).To(Equal("the scheduler was not running (the last run started 2026-12-01 11:50:00 UTC)"))
		Expect(out.String()).To(ContainSubstring("missed 5 more scheduled runs up to 2026-12-01 12:00:30 UTC"))
	})

	It("misses nothing at start when the last run is not older than the last scheduled time", func() {
		clock = newFakeClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
		last = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
		done := loop(scheduler("0 2 * * *", "UTC", func(context.Context) error { Fail("ran"); return nil }))
		Eventually(out.String).Should(ContainSubstring("scheduler: next run at 2026-12-02 02:00:00 UTC"))
		cancel()
		Eventually(done).Should(Receive(BeNil()))
		Expect(missed.get()).To(BeEmpty())
	})

	It("stops with an error, starting nothing, when the schedule gives no next time (29 February after 2096: none until 2104)", func() {
		clock = newFakeClock(time.Date(2097, 3, 1, 0, 0, 0, 0, time.UTC))
		runs := 0
		s := scheduler("0 0 29 2 *", "", func(context.Context) error {
			if runs++; runs == 3 {
				cancel() // the old loop ran back to back
			}
			return nil
		})
		err := s.Loop(ctx)
		Expect(runs).To(BeZero())
		Expect(err).To(MatchError("the schedule gives no next time after 2097-03-01 00:00:00 UTC: stopping rather than running back to back"))
		Expect(out.String()).To(ContainSubstring("scheduler: stopped: the schedule gives no next time after 2097-03-01 00:00:00 UTC"))
	})

	It("stops at once when stopped while waiting, starting nothing", func() {
		clock = newFakeClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
		cancel()
		Expect(scheduler("@hourly", "", func(context.Context) error { Fail("ran"); return nil }).Loop(ctx)).To(Succeed())
		Expect(out.String()).To(HaveSuffix("scheduler: stopped\n"))
	})

	It("waits on the wall clock until the time or the stop", func() {
		wall := schedule.WallClock{}
		Expect(wall.Wait(ctx, wall.Now().Add(-time.Second))).To(Succeed(), "a time past returns at once")
		cancel()
		Expect(wall.Wait(ctx, wall.Now().Add(time.Hour))).To(MatchError(context.Canceled))
	})

	DescribeTable("refuses a config it cannot run, saying what to write",
		func(cfg, want string) {
			path := filepath.Join(GinkgoT().TempDir(), "config.yml")
			Expect(os.WriteFile(path, []byte(cfg), 0o600)).To(Succeed())
			_, err := schedule.LoadConfig(path)
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("a bad expression", "schedule: '0 25 * * *'\nbackup_config: /b\n", `schedule "0 25 * * *": `),
		Entry("six fields", "schedule: '0 0 2 * * *'\nbackup_config: /b\n", `(e.g. "0 2 * * *", daily at 02:00, or @every 6h)`),
		Entry("a zone in the expression", "schedule: 'CRON_TZ=UTC 0 2 * * *'\nbackup_config: /b\n", "give the time zone as time_zone"),
		Entry("an unknown zone", "schedule: '@daily'\ntime_zone: Mars/Olympus\nbackup_config: /b\n", `time_zone "Mars/Olympus" is not a time zone name`),
		Entry("no backup config", "schedule: '@daily'\n", "backup_config is required"),
		Entry("an unknown key", "schedule: '@daily'\nbackup_config: /b\ncron: x\n", "field cron not found"),
		Entry("30 February", "schedule: '0 0 30 2 *'\nbackup_config: /b\n", `schedule "0 0 30 2 *" never fires`),
		Entry("31 April or June", "schedule: '0 2 31 4,6 *'\nbackup_config: /b\n", `schedule "0 2 31 4,6 *" never fires`),
		Entry("every 5 minutes", "schedule: '*/5 * * * *'\nbackup_config: /b\n", `schedule "*/5 * * * *" runs as often as every 5m0s: more often than min_interval (15m0s)`),
		Entry("two minutes 10 apart across the hour", "schedule: '5,55 * * * *'\nbackup_config: /b\n", "runs as often as every 10m0s"),
		Entry("@every 1m", "schedule: '@every 1m'\nbackup_config: /b\n", `schedule "@every 1m" runs as often as every 1m0s: more often than min_interval (15m0s)`),
		Entry("every 5 minutes with min_interval 10m", "schedule: '*/5 * * * *'\nmin_interval: 10m\nbackup_config: /b\n", "more often than min_interval (10m0s)"),
		Entry("a min_interval above 15m", "schedule: '@daily'\nmin_interval: 2h\nbackup_config: /b\n", `min_interval "2h" must be a duration from 1s to 15m`),
		Entry("a min_interval of 0", "schedule: '@daily'\nmin_interval: 0s\nbackup_config: /b\n", `min_interval "0s" must be a duration from 1s to 15m`),
		Entry("a negative run_timeout", "schedule: '@daily'\nrun_timeout: -1h\nbackup_config: /b\n", `run_timeout "-1h" must be a duration`),
		Entry("a run_timeout that is no duration", "schedule: '@daily'\nrun_timeout: soon\nbackup_config: /b\n", `run_timeout "soon" must be a duration`),
	)

	DescribeTable("accepts a schedule that fires, no more often than min_interval",
		func(cfg string) {
			path := filepath.Join(GinkgoT().TempDir(), "config.yml")
			Expect(os.WriteFile(path, []byte(cfg+"backup_config: /b\n"), 0o600)).To(Succeed())
			_, err := schedule.LoadConfig(path)
			Expect(err).NotTo(HaveOccurred())
		},
		Entry("29 February, every leap year", "schedule: '0 0 29 2 *'\n"),
		Entry("30 February or any Monday in February (day-of-month or day-of-week)", "schedule: '0 0 30 2 1'\n"),
		Entry("twice an hour", "schedule: '0,30 * * * *'\n"),
		Entry("10 minutes apart, but not in consecutive hours", "schedule: '0,50 2 * * *'\n"),
		Entry("@every 15m", "schedule: '@every 15m'\n"),
		Entry("@hourly", "schedule: '@hourly'\n"),
		Entry("every 5 minutes with min_interval 5m", "schedule: '*/5 * * * *'\nmin_interval: 5m\n"),
		Entry("@every 1s with min_interval 1s and a run_timeout", "schedule: '@every 1s'\nmin_interval: 1s\nrun_timeout: 6h\n"),
	)
})
