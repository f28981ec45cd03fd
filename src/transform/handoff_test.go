package transform

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestHandoffRead(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789"), 10_000)
	p := newHandoff()
	go func() {
		_, err := io.Copy(p, iotest.HalfReader(bytes.NewReader(want)))
		p.CloseWrite(err)
	}()
	if err := iotest.TestReader(struct{ io.Reader }{p}, want); err != nil {
		t.Fatal(err)
	}
}

func TestHandoffWriteTo(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789"), 10_000)
	p := newHandoff()
	go func() {
		_, _ = p.Write(nil) // an empty write passes too
		_, err := io.Copy(p, iotest.HalfReader(bytes.NewReader(want)))
		p.CloseWrite(err)
	}()
	var got bytes.Buffer
	n, err := p.WriteTo(&got)
	if err != nil || n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("WriteTo: %d bytes, %v", n, err)
	}
}

func TestHandoffErrors(t *testing.T) {
	boom := errors.New("boom")
	p := newHandoff()
	go p.CloseWrite(boom)
	if _, err := p.WriteTo(io.Discard); !errors.Is(err, boom) {
		t.Errorf("the reader got %v, not the writer's error", err)
	}

	p = newHandoff()
	full := errors.New("disk full")
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(make([]byte, 10))
		done <- err
	}()
	if _, err := p.WriteTo(failingWriter{full}); !errors.Is(err, full) {
		t.Errorf("WriteTo returned %v", err)
	}
	p.CloseWithError(errors.Join(full, errStopped))
	if err := <-done; !errors.Is(err, errStopped) {
		t.Errorf("the writer got %v, not the reader's close error", err)
	}
	if _, err := p.Write([]byte("more")); !errors.Is(err, errStopped) {
		t.Errorf("a later write got %v", err)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }
