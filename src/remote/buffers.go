package remote

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"
)

// limitedBuffer keeps the first max bytes of stderr: enough for an error
// message, bounded whatever a script prints.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}

type sessionWriter struct {
	w       io.Writer
	session *ssh.Session

	mu       sync.Mutex
	err      error
	detached bool
}

var errDetached = errors.New("no longer waiting for the command")

// Write holds the lock while writing so that once detach has returned
// nothing more reaches w: an abandoned session may still deliver output.
func (c *sessionWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.detached {
		return 0, errDetached
	}
	n, err := c.w.Write(p)
	if err != nil && c.err == nil {
		c.err = err
		c.session.Close()
	}
	return n, err
}

func (c *sessionWriter) detach() {
	c.mu.Lock()
	c.detached = true
	c.mu.Unlock()
}

// failed is the local write error that ended the session, if any.
func (c *sessionWriter) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// readBufferSize is the socket read size. x/crypto/ssh reads each packet
// through a 4 KiB bufio.Reader, in two or three reads: without this buffer a
// 1 GiB transfer costs about 100 000 read syscalls, a large share of the
// client's CPU time on a fast link.
const readBufferSize = 256 << 10

// bufferedConn reads the socket in large chunks.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
