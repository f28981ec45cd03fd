package transform

import (
	"io"
	"sync"
)

// handoff is io.Pipe with a WriteTo: a writer's bytes go to the reader's
// destination from the writer's own slice, with no buffer between the
// stages and no copy into one. Like io.Pipe it holds nothing: Write
// returns once the other side has taken every byte.
type handoff struct {
	wrCh chan []byte
	rdCh chan int

	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	rerr error // the reader's close error, which writers get
	werr error // the writer's close error, which readers get
}

func newHandoff() *handoff {
	return &handoff{wrCh: make(chan []byte), rdCh: make(chan int), done: make(chan struct{})}
}

// Write blocks until every byte of b was read or written on, or the
// reader closed.
func (p *handoff) Write(b []byte) (int, error) {
	select {
	case <-p.done:
		return 0, p.writeErr()
	default:
	}
	var n int
	for once := true; once || len(b) > 0; once = false {
		select {
		case p.wrCh <- b:
			nr := <-p.rdCh
			b = b[nr:]
			n += nr
		case <-p.done:
			return n, p.writeErr()
		}
	}
	return n, nil
}

// Read copies what a Write offers, for a consumer without WriteTo's use.
func (p *handoff) Read(b []byte) (int, error) {
	select {
	case <-p.done:
		return 0, p.readErr()
	default:
	}
	select {
	case bw := <-p.wrCh:
		n := copy(b, bw)
		p.rdCh <- n
		return n, nil
	case <-p.done:
		return 0, p.readErr()
	}
}

// WriteTo writes every Write's bytes to w as they come, until the writer
// closes. On an error of w's it returns; the writer waits until the
// reading side is closed (CloseWithError), as with io.Pipe.
func (p *handoff) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		select {
		case bw := <-p.wrCh:
			n, err := w.Write(bw)
			if err == nil && n < len(bw) {
				err = io.ErrShortWrite
			}
			total += int64(n)
			p.rdCh <- n
			if err != nil {
				return total, err
			}
		case <-p.done:
			if err := p.readErr(); err != io.EOF {
				return total, err
			}
			return total, nil
		}
	}
}

// CloseWrite ends the stream: readers get err, or io.EOF when nil.
func (p *handoff) CloseWrite(err error) {
	if err == nil {
		err = io.EOF
	}
	p.close(func() { p.werr = err })
}

// CloseWithError stops the reading side: writers get err (or
// io.ErrClosedPipe), and so do readers.
func (p *handoff) CloseWithError(err error) {
	if err == nil {
		err = io.ErrClosedPipe
	}
	p.close(func() { p.rerr = err })
}

func (p *handoff) close(set func()) {
	p.mu.Lock()
	if p.rerr == nil && p.werr == nil {
		set()
	}
	p.mu.Unlock()
	p.once.Do(func() { close(p.done) })
}

func (p *handoff) writeErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr != nil {
		return p.rerr
	}
	return io.ErrClosedPipe // the writer closed it, and writes on
}

func (p *handoff) readErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return p.werr
	}
	return p.rerr
}

var _ io.WriterTo = (*handoff)(nil)
