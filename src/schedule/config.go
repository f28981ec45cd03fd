package schedule

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strings"
	"time"

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
	// MinInterval is the shortest time allowed between two scheduled
	// runs, a Go duration up to DefaultMinInterval; empty: that default.
	// Only tests lower it: each run locks every deployment.
	MinInterval string `yaml:"min_interval"`
	// RunTimeout, a Go duration, stops a scheduled run that goes on
	// longer, as monit stop would; empty or 0: no limit.
	RunTimeout string `yaml:"run_timeout"`
	// BackupConfig is the colocated backup errand's config: what is backed
	// up, where, and how, is the errand's.
	BackupConfig string `yaml:"backup_config"`
}

// DefaultMinInterval is the shortest interval a schedule may have unless
// min_interval lowers it: a schedule that backs up more often locks
// production nearly all the time.
const DefaultMinInterval = 15 * time.Minute

// firesChecked is how many of a schedule's next times must exist for it
// to be accepted (robfig/cron looks 5 years ahead for each).
const firesChecked = 5

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
	if _, err := c.Timeout(); err != nil {
		return c, err
	}
	_, _, err = c.Parse()
	return c, err
}

// Timeout is RunTimeout as a duration; 0: none.
func (c Config) Timeout() (time.Duration, error) {
	if c.RunTimeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.RunTimeout)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("run_timeout %q must be a duration (e.g. 6h, 90m), or 0 for no limit", c.RunTimeout)
	}
	return d, nil
}

// minInterval is MinInterval as a duration.
func (c Config) minInterval() (time.Duration, error) {
	if c.MinInterval == "" {
		return DefaultMinInterval, nil
	}
	d, err := time.ParseDuration(c.MinInterval)
	if err != nil || d < time.Second || d > DefaultMinInterval {
		return 0, fmt.Errorf("min_interval %q must be a duration from 1s to 15m: it only lowers the 15m floor, for tests", c.MinInterval)
	}
	return d, nil
}

// Parse returns the schedule and its time zone. It refuses a schedule
// that never fires (robfig/cron gives the zero time for it, which a loop
// would run back to back) and one that fires more often than
// min_interval.
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
	floor, err := c.minInterval()
	if err != nil {
		return nil, nil, err
	}
	if gap := shortestGap(sched); gap < floor {
		return nil, nil, fmt.Errorf("schedule %q runs as often as every %s: more often than min_interval (%s); each run locks every deployment", c.Schedule, gap, floor)
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		sched = wallClock{spec: spec, loc: loc}
	}
	t := time.Now().In(loc)
	for range firesChecked {
		if t = sched.Next(t); t.IsZero() {
			return nil, nil, fmt.Errorf("schedule %q never fires (no such date, e.g. 30 February): give one that does, e.g. \"0 2 * * *\"", c.Schedule)
		}
	}
	return sched, loc, nil
}

// shortestGap is the shortest time between two of sched's times, exact
// below an hour; an hour for anything that runs at most once an hour.
// The standard parser fixes the second at 0, so a cron expression runs
// twice within an hour only when it lists two minutes: the gap is the
// closest two, or the last minute of one hour to the first of the next
// when two consecutive hours are listed.
func shortestGap(sched cron.Schedule) time.Duration {
	switch s := sched.(type) {
	case cron.ConstantDelaySchedule:
		return s.Delay
	case *cron.SpecSchedule:
		minutes := s.Minute & (1<<60 - 1)
		if bits.OnesCount64(minutes) < 2 {
			return time.Hour
		}
		first, last, gap := bits.TrailingZeros64(minutes), 63-bits.LeadingZeros64(minutes), 60
		for m, prev := first+1, first; m <= last; m++ {
			if minutes&(1<<m) != 0 {
				gap, prev = min(gap, m-prev), m
			}
		}
		hours := s.Hour & (1<<24 - 1)
		if hours&(hours>>1|hours<<23) != 0 { // h and h+1 (23 and 0 too)
			gap = min(gap, 60-last+first)
		}
		return time.Duration(gap) * time.Minute
	}
	return time.Hour
}
