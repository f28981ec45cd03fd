package schedule_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/schedule"
)

// fakeClock jumps to whatever is waited for.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Wait(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

type missedCall struct {
	first time.Time
	count int
	why   string
}

var _ = Describe("the scheduler", func() {
	var (
		clock  *fakeClock
		out    bytes.Buffer
		ctx    context.Context
		cancel context.CancelFunc
		missed []missedCall
		last   time.Time
	)

	BeforeEach(func() {
		out.Reset()
		missed, last = nil, time.Time{}
		ctx, cancel = context.WithCancel(context.Background())
		DeferCleanup(cancel)
	})

	scheduler := func(spec, zone string, run func(context.Context) error) schedule.Scheduler {
		sched, loc, err := schedule.Config{Schedule: spec, TimeZone: zone, MinInterval: "1s"}.Parse()
		Expect(err).NotTo(HaveOccurred())
		return schedule.Scheduler{Schedule: sched, Location: loc, Run: run, Clock: clock, Out: &out,
			LastStart: func() (time.Time, bool) { return last, !last.IsZero() },
			Missed: func(_ context.Context, first time.Time, count int, why string) {
				missed = append(missed, missedCall{first, count, why})
			}}
	}

	It("runs at the schedule's times in its time zone, across a DST change, until stopped", func() {
		berlin, err := time.LoadLocation("Europe/Berlin")
		Expect(err).NotTo(HaveOccurred())
		clock = &fakeClock{now: time.Date(2026, 10, 23, 12, 0, 0, 0, berlin)}
		var ran []time.Time
		s := scheduler("30 2 * * *", "Europe/Berlin", func(context.Context) error {
			ran = append(ran, clock.Now())
			if len(ran) == 3 {
				cancel()
			}
			return nil
		})
		Expect(s.Loop(ctx)).To(Succeed())
		Expect(ran).To(HaveLen(3))
		// 25 October: CEST ends at 03:00, so 02:30 comes twice; it runs once.
		for i, day := range []int{24, 25, 26} {
			Expect(ran[i].In(berlin).Format("2006-01-02 15:04")).To(Equal(time.Date(2026, 10, day, 2, 30, 0, 0, berlin).Format("2006-01-02 15:04")))
		}
		Expect(ran[0].UTC().Hour()).To(Equal(0), "02:30 CEST")
		Expect(ran[1].UTC().Hour()).To(Equal(0), "02:30 CEST, the first of the day's two 02:30s")
		Expect(ran[2].UTC().Hour()).To(Equal(1), "02:30 CET")
		Expect(out.String()).To(ContainSubstring("scheduler: next run at 2026-10-24 02:30:00 CEST"))
		Expect(out.String()).To(ContainSubstring("scheduler: the run scheduled at 2026-10-26 02:30:00 CET succeeded"))
		Expect(out.String()).To(HaveSuffix("scheduler: stopped\n"))
		Expect(missed).To(BeEmpty())
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

	It("never starts a run while one goes on: the times it overran are missed, logged and reported, and the next starts on time", func() {
		clock = &fakeClock{now: time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)}
		var ran []time.Time
		running := false
		s := scheduler("0 * * * *", "", func(context.Context) error {
			Expect(running).To(BeFalse(), "two runs at once")
			running = true
			defer func() { running = false }()
			ran = append(ran, clock.Now())
			if len(ran) == 1 {
				clock.now = clock.now.Add(150 * time.Minute) // 01:00 to 03:30
				return errors.New("1 of 2 deployments failed: cf\nmore")
			}
			cancel()
			return nil
		})
		Expect(s.Loop(ctx)).To(Succeed())
		Expect(ran).To(Equal([]time.Time{time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)}))
		Expect(missed).To(Equal([]missedCall{{time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC), 2, "the run scheduled at 2026-12-01 01:00:00 UTC was still going"}}))
		Expect(out.String()).To(ContainSubstring("the run scheduled at 2026-12-01 01:00:00 UTC failed: 1 of 2 deployments failed: cf; more"))
		Expect(out.String()).To(ContainSubstring("missed the run scheduled at 2026-12-01 02:00:00 UTC: the run scheduled at 2026-12-01 01:00:00 UTC was still going"))
		Expect(out.String()).To(ContainSubstring("missed the run scheduled at 2026-12-01 03:00:00 UTC"))
	})

	It("says at start which runs it missed while it was not running, listing a few and counting the rest", func() {
		clock = &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 30, 0, time.UTC)}
		last = time.Date(2026, 12, 1, 11, 50, 0, 0, time.UTC)
		s := scheduler("@every 1m", "", func(context.Context) error { cancel(); return nil })
		Expect(s.Loop(ctx)).To(Succeed())
		Expect(missed).To(HaveLen(1))
		Expect(missed[0].first).To(Equal(time.Date(2026, 12, 1, 11, 51, 0, 0, time.UTC)))
		Expect(missed[0].count).To(Equal(10))
		Expect(missed[0].why).To(Equal("the scheduler was not running (the last run started 2026-12-01 11:50:00 UTC)"))
		Expect(out.String()).To(ContainSubstring("missed 5 more scheduled runs up to 2026-12-01 12:00:30 UTC"))
	})

	It("misses nothing at start when the last run is not older than the last scheduled time", func() {
		clock = &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
		last = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
		s := scheduler("0 2 * * *", "UTC", func(context.Context) error { cancel(); return nil })
		Expect(s.Loop(ctx)).To(Succeed())
		Expect(missed).To(BeEmpty())
	})

	It("stops with an error, starting nothing, when the schedule gives no next time (29 February after 2096: none until 2104)", func() {
		clock = &fakeClock{now: time.Date(2097, 3, 1, 0, 0, 0, 0, time.UTC)}
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
		clock = &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
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
