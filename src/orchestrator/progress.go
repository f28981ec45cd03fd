package orchestrator

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
)

// DefaultProgressInterval is how often a long copy reports how far it got.
const DefaultProgressInterval = 10 * time.Second

// Meter shows copies live, as a terminal's progress bars do; without one
// a long copy logs a line every ProgressInterval.
type Meter interface {
	// Phase starts a copy phase of jobs totalling total bytes (0: not
	// known: a backup runs no du to learn it).
	Phase(what string, jobs int, total int64) MeterPhase
}

// MeterPhase is one copy phase on a Meter.
type MeterPhase interface {
	// Job shows one job's copy of size bytes (0: not known) as r is
	// read, until done is called with how it ended.
	Job(name string, size int64, r io.Reader) (counted io.Reader, done func(err error))
	// End ends the phase.
	End()
}

// copyProgress counts one copy phase (the drain of a backup or the upload
// of a restore) so that a long one can say how far it got. A copy shorter
// than the interval prints nothing more than upstream's lines.
type copyProgress struct {
	bytes atomic.Int64
	done  atomic.Int64
	jobs  int
	total int64 // 0 when unknown: a backup runs no du to learn it
	meter MeterPhase
}

// job counts what is read through r, and shows it on the meter if there
// is one; done ends the job's bar.
func (p *copyProgress) job(name string, size int64, r io.Reader) (io.Reader, func(error)) {
	r = &countingReader{r: r, n: &p.bytes}
	if p.meter == nil {
		return r, func(error) {}
	}
	return p.meter.Job(name, size, r)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// line says how far the copy is after elapsed.
func (p *copyProgress) line(elapsed time.Duration) string {
	n := p.bytes.Load()
	rate := artifact.HumanSize(int64(float64(n)/max(elapsed.Seconds(), 0.001))) + "/s"
	jobs := fmt.Sprintf("%d of %d jobs done", p.done.Load(), p.jobs)
	if p.total > 0 {
		return fmt.Sprintf("Copying: %s of %s (%d%%) at %s, %s", artifact.HumanSize(n), artifact.HumanSize(p.total), n*100/p.total, rate, jobs)
	}
	return fmt.Sprintf("Copying: %s so far at %s, %s", artifact.HumanSize(n), rate, jobs)
}

// reportProgress shows p on the meter, or logs p's line every
// ProgressInterval, until the returned stop is called.
func (o *Orchestrator) reportProgress(what string, p *copyProgress) (stop func()) {
	if o.Meter != nil {
		p.meter = o.Meter.Phase(what, p.jobs, p.total)
		return p.meter.End
	}
	if o.ProgressInterval <= 0 {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(o.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				o.Logger.Info("bbr", "%s", p.line(time.Since(start)))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
