// Package progress draws live progress bars on a terminal (mpb): one per
// job being copied and one for the whole phase, with bytes, rate and,
// when the size is known, percentage and ETA. Log lines written to Bars
// print above the bars, so upstream's lines stay as they are.
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/bbr-release/bbr/src/orchestrator"
)

// Bars is an orchestrator.Meter on a terminal, and the io.Writer its
// log lines go through: to the running phase's bars, which print them
// above themselves, or straight to the terminal between phases.
type Bars struct {
	out io.Writer
	mu  sync.Mutex
	p   *mpb.Progress // the running phase's; nil between phases
}

var _ orchestrator.Meter = (*Bars)(nil)

// New draws on out, which must be a terminal.
func New(out io.Writer) *Bars { return &Bars{out: out} }

// Write prints log lines above the bars, or straight out between phases.
func (b *Bars) Write(p []byte) (int, error) {
	b.mu.Lock()
	cur := b.p
	b.mu.Unlock()
	if cur != nil {
		if n, err := cur.Write(p); err == nil {
			return n, nil
		}
	}
	return b.out.Write(p)
}

// Stop cancels a phase still drawn (the run stopped mid-copy).
func (b *Bars) Stop() {
	b.mu.Lock()
	cur := b.p
	b.p = nil
	b.mu.Unlock()
	if cur != nil {
		cur.Shutdown()
	}
}

// Phase starts drawing a phase: its total bar now, a bar per job as
// each starts.
func (b *Bars) Phase(what string, jobs int, total int64) orchestrator.MeterPhase {
	p := mpb.New(mpb.WithOutput(b.out), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	ph := &phase{bars: b, p: p}
	// A total of 0 is one mpb does not complete by itself: End does.
	ph.bar, _ = p.Add(total, barStyle(total).Build(),
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%s, %d jobs", what, jobs), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(counters(total)...),
		mpb.BarPriority(1<<30), // below the jobs
		mpb.BarRemoveOnComplete())
	b.mu.Lock()
	b.p = p
	b.mu.Unlock()
	return ph
}

type phase struct {
	bars *Bars
	p    *mpb.Progress
	bar  *mpb.Bar
	mu   sync.Mutex
	jobs []*mpb.Bar
}

// Job adds a bar for one job's copy; the total bar counts it too. If the
// bars cannot draw (the terminal went away), it only counts.
func (ph *phase) Job(name string, size int64, r io.Reader) (io.Reader, func(error)) {
	bar, err := ph.p.Add(size, barStyle(size).Build(),
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(counters(size)...),
		mpb.BarRemoveOnComplete())
	if err != nil {
		return r, func(error) {}
	}
	ph.mu.Lock()
	ph.jobs = append(ph.jobs, bar)
	ph.mu.Unlock()
	return &reader{r: r, bars: []*mpb.Bar{bar, ph.bar}}, func(error) { bar.SetTotal(-1, true) }
}

// End completes the bars and waits for the last drawing, which also
// prints the log lines written since the one before.
func (ph *phase) End() {
	ph.mu.Lock()
	for _, job := range ph.jobs {
		if !job.Completed() {
			job.Abort(true) // a job the phase gave up on
		}
	}
	ph.mu.Unlock()
	if ph.bar != nil {
		ph.bar.SetTotal(-1, true)
	}
	ph.bars.mu.Lock()
	if ph.bars.p == ph.p {
		ph.bars.p = nil
	}
	ph.bars.mu.Unlock()
	ph.p.Wait()
}

// reader counts bytes on its bars as they are read.
type reader struct {
	r    io.Reader
	bars []*mpb.Bar
}

func (c *reader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for _, b := range c.bars {
		if b != nil {
			b.IncrBy(n)
		}
	}
	return n, err
}

// barStyle is a bar when the size is known, else a spinner.
func barStyle(size int64) mpb.BarFillerBuilder {
	if size > 0 {
		return mpb.BarStyle()
	}
	return mpb.SpinnerStyle()
}

// counters are the bytes, the rate and, with a size, the percentage and ETA.
func counters(size int64) []decor.Decorator {
	ds := []decor.Decorator{decor.Current(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace)}
	if size > 0 {
		ds = []decor.Decorator{decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace), decor.Percentage(decor.WCSyncSpace)}
	}
	ds = append(ds, decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace))
	if size > 0 {
		ds = append(ds, decor.AverageETA(decor.ET_STYLE_MMSS, decor.WCSyncSpace))
	}
	return ds
}
