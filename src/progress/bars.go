// Package progress draws live progress bars on a terminal (mpb): one per
// job being copied and one for the whole phase, with bytes, rate and,
// when the size is known, percentage and ETA. Log lines written to Bars
// print above the bars, so upstream's lines stay as they are.
package progress

import (
	"fmt"
	"io"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/bbr-release/bbr/src/orchestrator"
)

// Bars is an orchestrator.Meter on a terminal, and the io.Writer its
// log lines go through.
type Bars struct {
	p *mpb.Progress
}

var _ orchestrator.Meter = (*Bars)(nil)

// New draws on out, which must be a terminal.
func New(out io.Writer) *Bars {
	return &Bars{p: mpb.New(mpb.WithOutput(out), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())}
}

// Write prints log lines above the bars.
func (b *Bars) Write(p []byte) (int, error) {
	n, err := b.p.Write(p)
	if err != nil { // after Stop: straight through, nothing is drawn any more
		return len(p), nil
	}
	return n, nil
}

// Stop removes what is still drawn and waits for the last refresh.
func (b *Bars) Stop() { b.p.Shutdown() }

// Phase starts a phase's total bar.
func (b *Bars) Phase(what string, jobs int, total int64) orchestrator.MeterPhase {
	ph := &phase{bars: b, total: total}
	// A total of 0 is one mpb does not complete by itself: SetTotal does.
	ph.bar = b.p.New(total, barStyle(total),
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%s, %d jobs", what, jobs), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(counters(total)...),
		mpb.BarPriority(1<<30), // the total stays below the jobs
		mpb.BarRemoveOnComplete())
	return ph
}

type phase struct {
	bars  *Bars
	bar   *mpb.Bar
	total int64
}

// Job adds a bar for one job's copy; the total bar counts it too.
func (ph *phase) Job(name string, size int64, r io.Reader) (io.Reader, func(error)) {
	bar := ph.bars.p.New(size, barStyle(size),
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(counters(size)...),
		mpb.BarRemoveOnComplete())
	counted := &reader{r: r, bars: []*mpb.Bar{bar, ph.bar}}
	return counted, func(err error) {
		if err != nil {
			bar.Abort(true)
			return
		}
		bar.SetTotal(-1, true) // complete, whatever the size said
	}
}

// End completes the total bar.
func (ph *phase) End() {
	ph.bar.SetTotal(-1, true)
	ph.bar.Wait()
}

// reader counts bytes on its bars as they are read.
type reader struct {
	r    io.Reader
	bars []*mpb.Bar
}

func (c *reader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for _, b := range c.bars {
		b.IncrBy(n)
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
