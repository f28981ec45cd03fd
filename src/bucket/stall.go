package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
)

// DefaultStallTimeout is how long a connection to the bucket may move no
// byte, either way, before the request on it fails.
const DefaultStallTimeout = time.Minute

// StallError is a connection that moved no byte for the stall timeout.
// Its message says so, for the operator; errors.As finds it under the
// HTTP client's and minio-go's wrapping.
type StallError struct {
	After time.Duration
	Err   error
}

func (e *StallError) Error() string {
	return fmt.Sprintf("the S3 endpoint stalled: no byte moved for %s (raise --s3-stall-timeout, or the errand's s3.stall_timeout_seconds, for a slow link): %v", e.After, e.Err)
}

func (e *StallError) Unwrap() error { return e.Err }

// Timeout and Temporary keep it a net.Error for the HTTP client.
func (e *StallError) Timeout() bool   { return true }
func (e *StallError) Temporary() bool { return true }

func isStall(err error) bool {
	var s *StallError
	return errors.As(err, &s)
}

// progressConn is a connection under a progress deadline: every byte
// read or written pushes the deadline of both directions back by stall,
// so a response body, a request body or a server thinking about its
// answer may take as long as it needs, but never stop for longer than
// stall. Both directions count: while a part uploads, the read waiting
// for the response sees no byte, and must not fail.
type progressConn struct {
	net.Conn
	stall   time.Duration
	expired atomic.Bool
}

// writeChunk bounds one write, so that a large body (minio-go hands the
// whole part to one Write) moves the deadline as it goes: a link slower
// than writeChunk per stall timeout (4 KiB/s at the default) fails.
const writeChunk = 256 << 10

func (c *progressConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.progress()
	}
	return n, c.stalled(err)
}

func (c *progressConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		// A request on an idle connection starts its clock here.
		c.progress()
		chunk := p[:min(len(p), writeChunk)]
		n, err := c.Conn.Write(chunk)
		written += n
		if err != nil {
			return written, c.stalled(err)
		}
		p = p[n:]
	}
	return written, nil
}

func (c *progressConn) progress() { _ = c.Conn.SetDeadline(time.Now().Add(c.stall)) }

// stalled marks err as the stall when the deadline passed, also for the
// other direction: it fails as the HTTP client closes the connection.
func (c *progressConn) stalled(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.expired.Store(true)
	}
	if c.expired.Load() {
		return &StallError{After: c.stall, Err: err}
	}
	return err
}

// progressDialer dials connections under a progress deadline.
func progressDialer(stall time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &progressConn{Conn: conn, stall: stall}, nil
	}
}

// retryStalled runs an idempotent call (a listing) again when its
// answer's body stalled. minio-go has already retried a request whose
// answer did not start (that error is the HTTP client's *url.Error), but
// not one whose body stopped while it was being parsed.
func retryStalled(ctx context.Context, call func() error) error {
	const attempts = 3
	var err error
	for range attempts {
		var started *url.Error
		if err = call(); !isStall(err) || errors.As(err, &started) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// resumeProgress is what a resumed GET must read before a stall counts
// as a new one: a server that sends a little and stalls again, on every
// connection, must not keep a reader going for ever.
const (
	resumeProgress = 1 << 20
	maxResumes     = 4
)

// resumingBody is an object's body that, when the connection stalls,
// asks again for the rest: a GET with a Range from the offset reached,
// only if the object is still the one it started reading (If-Match).
type resumingBody struct {
	ctx    context.Context
	d      *Destination
	key    string
	etag   string
	size   int64
	body   io.ReadCloser
	off    int64
	since  int64 // bytes read since the last resume
	stalls int   // stalls without resumeProgress in between
}

func (r *resumingBody) Read(p []byte) (int, error) {
	for {
		n, err := r.body.Read(p)
		r.off += int64(n)
		r.since += int64(n)
		if err == nil || err == io.EOF || !isStall(err) { //nolint:errorlint // io.EOF is returned bare
			return n, r.wrap(err)
		}
		if rerr := r.resume(err); rerr != nil {
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *resumingBody) wrap(err error) error {
	if err == nil || err == io.EOF { //nolint:errorlint // see Read
		return err
	}
	return fmt.Errorf("reading %s at byte %d: %w", r.key, r.off, err)
}

// resume replaces the stalled body with a GET of the rest.
func (r *resumingBody) resume(stall error) error {
	if r.since >= resumeProgress {
		r.stalls = 0
	}
	r.stalls++
	if r.stalls > maxResumes || r.ctx.Err() != nil || r.off >= r.size {
		return fmt.Errorf("reading %s at byte %d, %d times without progress: %w", r.key, r.off, r.stalls, stall)
	}
	_ = r.body.Close()
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(r.off, 0); err != nil {
		return err
	}
	if r.etag != "" {
		_ = opts.SetMatchETag(r.etag)
	}
	body, info, _, err := r.d.core.GetObject(r.ctx, r.d.cfg.Bucket, r.key, opts)
	if err != nil {
		return fmt.Errorf("resuming %s at byte %d after it stalled (%w): %w", r.key, r.off, stall, explain(r.d.String(), err))
	}
	if info.Size != r.size-r.off {
		_ = body.Close()
		return fmt.Errorf("resuming %s at byte %d: the server sent %d bytes where %d remain (it ignored the Range)", r.key, r.off, info.Size, r.size-r.off)
	}
	r.body, r.since = body, 0
	return nil
}

func (r *resumingBody) Close() error { return r.body.Close() }
