package remote_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

const sshdMaxSessions = 10

// testServer is a minimal SSH server that runs exec requests with sh -c:
// enough of a real peer to test the client's protocol handling.
type testServer struct {
	addr    string
	hostKey ssh.Signer
	ln      net.Listener
	// frozen makes the server stop answering (a dead peer that keeps the
	// TCP socket).
	mu     sync.Mutex
	frozen bool
	// running holds the process group of every command still running, so
	// close can end them: a frozen connection never hangs up on its
	// commands, and a leftover `sleep 600` would outlive the test binary.
	running map[int]bool
}

func newTestServer(clientKey ssh.PublicKey) *testServer {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewSignerFromKey(priv)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(clientKey.Marshal()) {
				return nil, nil
			}
			return nil, io.ErrUnexpectedEOF
		},
	}
	cfg.AddHostKey(hostKey)
	// Like a VM, the server has host keys of several types; Go's client
	// prefers ECDSA to ed25519 unless told otherwise.
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecSigner, _ := ssh.NewSignerFromKey(ecKey)
	cfg.AddHostKey(ecSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := &testServer{addr: ln.Addr().String(), hostKey: hostKey, ln: ln, running: map[int]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(&freezableConn{Conn: c, s: s}, cfg)
		}
	}()
	return s
}

func (s *testServer) freeze() {
	s.mu.Lock()
	s.frozen = true
	s.mu.Unlock()
}

// close stops accepting connections and kills every command still running.
func (s *testServer) close() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for pgid := range s.running {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

func (s *testServer) track(pgid int, running bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if running {
		s.running[pgid] = true
	} else {
		delete(s.running, pgid)
	}
}

// freezableConn stops delivering anything to the server once frozen, as
// a peer that vanished without closing the socket.
type freezableConn struct {
	net.Conn
	s *testServer
}

func (f *freezableConn) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	f.s.mu.Lock()
	frozen := f.s.frozen
	f.s.mu.Unlock()
	if frozen {
		select {} // never answer again
	}
	return n, err
}

func (s *testServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	go func() {
		for r := range reqs {
			if r.WantReply {
				r.Reply(r.Type == "keepalive@openssh.com", nil)
			}
		}
	}()
	// Like sshd's MaxSessions (default 10): more open sessions on one
	// connection are refused.
	var open atomic.Int32
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		if open.Add(1) > sshdMaxSessions {
			open.Add(-1)
			nc.Reject(ssh.Prohibited, "open failed")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			open.Add(-1)
			continue
		}
		go func() {
			s.handleSession(ch, chReqs)
			// sshd frees the slot a little after the client saw the
			// session end; so does this server.
			time.Sleep(20 * time.Millisecond)
			open.Add(-1)
		}()
	}
}

func (s *testServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for r := range reqs {
		if r.Type != "exec" {
			if r.WantReply {
				r.Reply(r.Type == "signal", nil)
			}
			continue
		}
		cmdLen := binary.BigEndian.Uint32(r.Payload[:4])
		cmd := exec.Command("sh", "-c", string(r.Payload[4:4+cmdLen]))
		cmd.Stdin = ch
		cmd.Stdout = ch
		cmd.Stderr = ch.Stderr()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err := cmd.Start()
		r.Reply(true, nil)
		code := 127
		if err == nil {
			code = s.wait(cmd, reqs)
		}
		ch.CloseWrite()
		status := make([]byte, 4)
		binary.BigEndian.PutUint32(status, uint32(code))
		ch.SendRequest("exit-status", false, status)
		return
	}
}

// wait waits for a started command and returns its exit code. Like sshd,
// it does not kill a command whose session the client closed, and sends a
// signal request to the command's process only, not its group; close kills
// whatever is left when the spec ends.
func (s *testServer) wait(cmd *exec.Cmd, reqs <-chan *ssh.Request) int {
	pgid := cmd.Process.Pid
	s.track(pgid, true)
	defer s.track(pgid, false)
	go func() {
		for r := range reqs {
			if sig, ok := signalFromRequest(r); ok {
				syscall.Kill(pgid, sig)
			}
		}
	}()
	if err := cmd.Wait(); err != nil {
		if exitErr, ok := err.(*exec.ExitError); ok {
			return exitErr.ExitCode()
		}
		return 127
	}
	return 0
}

// signalFromRequest decodes an SSH "signal" request (RFC 4254 6.9).
func signalFromRequest(r *ssh.Request) (syscall.Signal, bool) {
	if r.Type != "signal" || len(r.Payload) < 4 {
		return 0, false
	}
	n := binary.BigEndian.Uint32(r.Payload[:4])
	if int(n) > len(r.Payload)-4 {
		return 0, false
	}
	sig, ok := map[string]syscall.Signal{
		"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP, "KILL": syscall.SIGKILL,
	}[string(r.Payload[4:4+n])]
	return sig, ok
}
