package schedule_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// fakeClock is the scheduler's time, moved only by the spec: a Wait
// returns once set has moved it to the time waited for.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waits   []time.Time   // the times waited for now, one per Wait
	changed chan struct{} // closed, and replaced, at each set
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Wait(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	c.waits = append(c.waits, t)
	defer func() {
		c.mu.Lock()
		c.waits = slices.Delete(c.waits, slices.Index(c.waits, t), slices.Index(c.waits, t)+1)
		c.mu.Unlock()
	}()
	for t.After(c.now) {
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
		c.mu.Lock()
	}
	c.mu.Unlock()
	return nil
}

// set moves the clock to t.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	close(c.changed)
	c.changed = make(chan struct{})
}

// waiting is the times waited for, in UTC, earliest first.
func (c *fakeClock) waiting() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ts []string
	for _, t := range c.waits {
		ts = append(ts, t.UTC().Format(time.RFC3339))
	}
	slices.Sort(ts)
	return ts
}

// fakeRun is a backup run that goes on until the spec releases it with
// its result, or until its context ends (it returns the context's
// error, and keeps its cause).
type fakeRun struct {
	clock   *fakeClock
	started chan time.Time // the clock's time at each start
	release chan error
	mu      sync.Mutex
	causes  []error
}

func newFakeRun(clock *fakeClock) *fakeRun {
	return &fakeRun{clock: clock, started: make(chan time.Time, 10), release: make(chan error)}
}

func (f *fakeRun) run(ctx context.Context) error {
	f.started <- f.clock.Now()
	select {
	case err := <-f.release:
		return err
	case <-ctx.Done():
		f.mu.Lock()
		f.causes = append(f.causes, context.Cause(ctx))
		f.mu.Unlock()
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
}

// stoppedBy is the causes of the stopped runs' contexts.
func (f *fakeRun) stoppedBy() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.causes)
}

// syncBuffer is the scheduler's log, written from its goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// calls records what the scheduler tells its hooks, from any goroutine.
type calls[T any] struct {
	mu   sync.Mutex
	list []T
}

func (c *calls[T]) add(v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, v)
}

func (c *calls[T]) get() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.list)
}
