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

// copyProgress counts one copy phase (the drain of a backup or the upload
// of a restore) so that a long one can say how far it got. A copy shorter
// than the interval prints nothing more than upstream's lines.
type copyProgress struct {
	bytes atomic.Int64
	done  atomic.Int64
	jobs  int
	total int64 // 0 when unknown: a backup runs no du to learn it
}

// reader counts what is read through r.
func (p *copyProgress) reader(r io.Reader) io.Reader { return &countingReader{r: r, n: &p.bytes} }

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

// reportProgress logs p's line every ProgressInterval until the returned
// stop is called.
func (o *Orchestrator) reportProgress(p *copyProgress) (stop func()) {
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
