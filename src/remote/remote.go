// Package remote runs commands on an instance over one SSH connection,
// opened once and multiplexed: every command is a session on it. Host keys
// are pinned to the key the Director reported; there is no trust on first use.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config says how to reach one instance.
type Config struct {
	// Addr is host or host:port (port 22 when absent).
	Addr   string
	User   string
	Signer ssh.Signer
	// HostKey is the pinned host key. A connection presenting another key
	// is refused.
	HostKey ssh.PublicKey
	// HostKeyCallback checks the host key when there is no HostKey to pin
	// (director mode, where no Director reports one).
	HostKeyCallback ssh.HostKeyCallback
	// HostKeyAlgorithms, with HostKeyCallback, are the host key algorithms
	// to ask for: those of the keys the callback knows (HostKeyAlgorithms
	// gives them for a key). A server with keys of several types otherwise
	// shows the one Go prefers, which the callback may not know. Nil asks
	// for any.
	HostKeyAlgorithms []string
	// ConnectTimeout bounds TCP connect plus SSH handshake.
	ConnectTimeout time.Duration
	// KeepAliveInterval is how often the peer is probed; a peer that does
	// not answer within the interval is considered dead and the connection
	// is closed, failing every running command. Zero disables probing.
	KeepAliveInterval time.Duration
	// MaxSessions bounds the sessions open at once on the connection.
	// sshd refuses sessions beyond its MaxSessions (default 10), so more
	// commands wait for a free one instead of failing. Default 8.
	MaxSessions int
	// CancelGrace is how long Run waits, once its context is cancelled and
	// the command has been sent SIGTERM, for the command to exit before it
	// closes the session. sshd does not kill a command whose session is
	// closed, so returning at once could let an interrupted lock script
	// finish locking after its unlock ran, or a backup script write on
	// while cleanup removes its directory. Default 10s.
	CancelGrace time.Duration
}

// DefaultCancelGrace leaves a script time to act on SIGTERM while keeping
// an interrupted run short.
const DefaultCancelGrace = 10 * time.Second

// DefaultMaxSessions stays below sshd's default MaxSessions of 10.
const DefaultMaxSessions = 8

// ExitError is a remote command that ran and exited non-zero.
type ExitError struct {
	Code   int
	Stderr string
}

// NoExitStatus is the Code of a command whose session ended without one.
const NoExitStatus = -1

func (e *ExitError) Error() string {
	code := fmt.Sprintf("exit code %d", e.Code)
	if e.Code == NoExitStatus {
		code = "no exit status"
	}
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		return code
	}
	return fmt.Sprintf("%s - %s", msg, code)
}

// Conn is an open connection to one instance.
type Conn struct {
	addr     string
	client   *ssh.Client
	sessions chan struct{} // a token per open session
	grace    time.Duration
	done     chan struct{}
	once     sync.Once
}

// preferredCiphers puts AES-GCM first: with AES-NI it is the fastest cipher
// both Go and OpenSSH offer (see machine-notes); the rest are Go's defaults.
var preferredCiphers = []string{
	"aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
	"chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
}

// Dial opens the connection; it returns when authenticated or failed.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	addr := cfg.Addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	check, algorithms := cfg.HostKeyCallback, cfg.HostKeyAlgorithms
	if cfg.HostKey != nil {
		check, algorithms = PinnedHostKeys("the Director reported", cfg.HostKey), HostKeyAlgorithms(cfg.HostKey)
	}
	if check == nil {
		return nil, fmt.Errorf("connecting to %s: no host key to verify it against", addr)
	}
	timeout := cfg.ConnectTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	clientCfg := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(cfg.Signer)},
		HostKeyCallback:   check,
		HostKeyAlgorithms: algorithms,
		Timeout:           timeout,
	}
	clientCfg.Ciphers = preferredCiphers

	dialCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tcp, err := (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext(dialCtx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	// The handshake has no context of its own: bound it with a deadline.
	deadline, _ := dialCtx.Deadline()
	_ = tcp.SetDeadline(deadline)
	stop := context.AfterFunc(dialCtx, func() { _ = tcp.SetDeadline(time.Unix(1, 0)) })
	c, chans, reqs, err := ssh.NewClientConn(newBufferedConn(tcp), addr, clientCfg)
	stop()
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	_ = tcp.SetDeadline(time.Time{})
	maxSessions := cfg.MaxSessions
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	grace := cfg.CancelGrace
	if grace <= 0 {
		grace = DefaultCancelGrace
	}
	conn := &Conn{addr: addr, client: ssh.NewClient(c, chans, reqs), sessions: make(chan struct{}, maxSessions), grace: grace, done: make(chan struct{})}
	if cfg.KeepAliveInterval > 0 {
		go conn.keepAlive(cfg.KeepAliveInterval)
	}
	return conn, nil
}

// HostKeyAlgorithms are the algorithms that show the given keys, so the
// server presents one that can be checked against them. An RSA key can be
// shown with any of three signature algorithms.
func HostKeyAlgorithms(keys ...ssh.PublicKey) []string {
	var algos []string
	for _, key := range keys {
		for _, a := range signatureAlgorithms(key.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func signatureAlgorithms(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// keepAlive probes the peer; a probe unanswered within the interval closes
// the connection so blocked reads fail instead of hanging forever.
func (c *Conn) keepAlive(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case err := <-replied:
			if err != nil {
				c.Close()
				return
			}
		case <-time.After(interval):
			c.Close()
			return
		case <-c.done:
			return
		}
	}
}

// Run runs cmd in a new session. stdin and stdout may be nil. It returns an
// *ExitError when the command exits non-zero. When ctx is cancelled it
// sends the command SIGTERM and, once the command has exited, reports how
// it ended (nil if it exited 0); after the cancel grace it gives up,
// closing the session. A command is never started once ctx is done.
func (c *Conn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error {
	if err := ctx.Err(); err != nil { // select below picks at random
		return fmt.Errorf("running %q on %s: %w", firstWord(cmd), c.addr, err)
	}
	select {
	case c.sessions <- struct{}{}:
		defer func() { <-c.sessions }()
	case <-ctx.Done():
		return fmt.Errorf("running %q on %s: %w", firstWord(cmd), c.addr, ctx.Err())
	case <-c.done:
		return fmt.Errorf("running %q on %s: connection closed", firstWord(cmd), c.addr)
	}
	session, err := c.newSession(ctx)
	if err != nil {
		return fmt.Errorf("opening ssh session to %s: %w", c.addr, err)
	}
	defer session.Close()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("running %q on %s: %w", firstWord(cmd), c.addr, err)
	}
	var stderr bytes.Buffer
	session.Stdin = stdin
	session.Stderr = &limitedBuffer{buf: &stderr, max: 64 << 10}
	if stdout == nil {
		stdout = io.Discard
	}
	// A failing local writer (disk full) must end the session, or the
	// remote side blocks on a full window and Run never returns.
	out := &sessionWriter{w: stdout, session: session}
	session.Stdout = out
	err = c.wait(ctx, session, cmd)
	if errors.Is(err, errAbandoned) {
		out.detach()
		return fmt.Errorf("running %q on %s: %w; it had not exited %s after SIGTERM and may still be running there", firstWord(cmd), c.addr, ctx.Err(), c.grace)
	}
	var exitErr *ssh.ExitError
	switch {
	case ctx.Err() == nil:
	case err == nil && out.failed() == nil:
		return nil // it finished after the SIGTERM: report what it did
	case errors.As(err, &exitErr):
		return fmt.Errorf("running %q on %s: it exited after SIGTERM (%w): %w", firstWord(cmd), c.addr, ctx.Err(),
			&ExitError{Code: exitErr.ExitStatus(), Stderr: stderr.String()})
	default:
		return fmt.Errorf("running %q on %s: %w", firstWord(cmd), c.addr, ctx.Err())
	}
	if werr := out.failed(); werr != nil {
		return fmt.Errorf("writing output of %q from %s: %w", firstWord(cmd), c.addr, werr)
	}
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exitErr):
		return &ExitError{Code: exitErr.ExitStatus(), Stderr: stderr.String()}
	case isExitMissing(err):
		// An ExitError, so reports shorten and redact its output.
		return fmt.Errorf("the ssh session to %s ended without an exit status: did the network or the instance fail?: %w", c.addr,
			&ExitError{Code: NoExitStatus, Stderr: stderr.String()})
	default:
		return fmt.Errorf("running command on %s: %w", c.addr, err)
	}
}

// wait runs cmd on session until it exits. Once ctx is cancelled the
// command is sent SIGTERM and given c.grace to exit (see
// Config.CancelGrace). sshd keeps a session open for as long as its
// command lives, so a command that outlives the grace is abandoned (the
// session is closed, the command is not killed) and errAbandoned returned.
func (c *Conn) wait(ctx context.Context, session *ssh.Session, cmd string) error {
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		// Start returns once sshd has started the command: a signal sent
		// before then would find no command to receive it.
		if err := session.Start(cmd); err != nil {
			done <- err
			return
		}
		close(started)
		done <- session.Wait()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	grace := time.NewTimer(c.grace)
	defer grace.Stop()
	for {
		select {
		case <-started:
			_ = session.Signal(ssh.SIGTERM)
			started = nil // signal once
		case err := <-done:
			return err
		case <-grace.C:
			session.Close()
			return errAbandoned
		}
	}
}

var errAbandoned = errors.New("the command outlived the cancel grace")

// newSession opens a session, retrying while sshd refuses it: sshd frees
// a session slot a little after the client sees the session end, so even
// a client that stays under MaxSessions is sometimes refused for a moment.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	delay := 5 * time.Millisecond
	deadline := time.Now().Add(sessionRetryLimit)
	for {
		session, err := c.client.NewSession()
		var refused *ssh.OpenChannelError
		if err == nil || !errors.As(err, &refused) || time.Now().After(deadline) {
			return session, err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, err
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// sessionRetryLimit bounds how long a refused session is retried.
const sessionRetryLimit = 30 * time.Second

// Close closes the connection; running commands fail.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		err = c.client.Close()
	})
	return err
}

func isExitMissing(err error) bool {
	var missing *ssh.ExitMissingError
	return errors.As(err, &missing)
}

func firstWord(cmd string) string {
	if i := strings.IndexByte(cmd, ' '); i > 0 {
		return cmd[:i] + " ..."
	}
	return cmd
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
