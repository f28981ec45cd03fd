package remote_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/remote"
)

var _ = Describe("Conn", func() {
	var (
		server *testServer
		signer ssh.Signer
		cfg    remote.Config
		ctx    context.Context
	)

	BeforeEach(func() {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		signer, _ = ssh.NewSignerFromKey(priv)
		server = newTestServer(signer.PublicKey())
		DeferCleanup(server.close)
		cfg = remote.Config{Addr: server.addr, User: "u", Signer: signer, HostKey: server.hostKey.PublicKey(), ConnectTimeout: 5 * time.Second}
		ctx = context.Background()
	})

	output := func(c *remote.Conn, cmd string) ([]byte, error) {
		var out bytes.Buffer
		err := c.Run(ctx, cmd, nil, &out)
		return out.Bytes(), err
	}

	dial := func() *remote.Conn {
		c, err := remote.Dial(ctx, cfg)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)
		return c
	}

	It("refuses a host key other than the pinned one, naming both fingerprints", func() {
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		otherSigner, _ := ssh.NewSignerFromKey(other)
		cfg.HostKey = otherSigner.PublicKey()
		_, err := remote.Dial(ctx, cfg)
		Expect(err).To(MatchError(ContainSubstring("host key mismatch")))
		Expect(err.Error()).To(ContainSubstring(ssh.FingerprintSHA256(server.hostKey.PublicKey())))
	})

	It("asks a server with host keys of several types for one its host key callback knows", func() {
		cfg.HostKey = nil
		cfg.HostKeyCallback = ssh.FixedHostKey(server.hostKey.PublicKey())
		cfg.HostKeyAlgorithms = remote.HostKeyAlgorithms(server.hostKey.PublicKey())
		c := dial()
		Expect(output(c, "echo ok")).To(Equal([]byte("ok\n")))
	})

	It("refuses to connect without a host key to check", func() {
		cfg.HostKey = nil
		_, err := remote.Dial(ctx, cfg)
		Expect(err).To(MatchError(ContainSubstring("no host key")))
	})

	It("reports a refused connection clearly", func() {
		server.close()
		_, err := remote.Dial(ctx, cfg)
		Expect(err).To(MatchError(ContainSubstring("connection refused")))
	})

	It("returns stdout, and the exit code with stderr on failure", func() {
		c := dial()
		out, err := output(c, "echo hello")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("hello\n"))

		err = c.Run(ctx, "echo broken >&2; exit 3", nil, nil)
		var exitErr *remote.ExitError
		Expect(errors.As(err, &exitErr)).To(BeTrue())
		Expect(exitErr.Code).To(Equal(3))
		Expect(err.Error()).To(Equal("broken - exit code 3"))
	})

	It("streams stdin through a command", func() {
		c := dial()
		var out bytes.Buffer
		Expect(c.Run(ctx, "wc -c", strings.NewReader(strings.Repeat("x", 3<<20)), &out)).To(Succeed())
		Expect(strings.TrimSpace(out.String())).To(Equal(fmt.Sprint(3 << 20)))
	})

	It("runs more commands at once than sshd's MaxSessions on the one connection", func() {
		c := dial()
		var wg sync.WaitGroup
		errs := make([]error, 30)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := output(c, fmt.Sprintf("sleep 0.1; echo %d", i))
				if err == nil && strings.TrimSpace(string(out)) != fmt.Sprint(i) {
					err = fmt.Errorf("got %q", out)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		Expect(errors.Join(errs...)).NotTo(HaveOccurred())
	})

	It("stops a running command when the context is cancelled", func() {
		c := dial()
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- c.Run(cctx, "echo started; exec sleep 600", nil, startedWriter(cancel)) }()
		Eventually(done, 10*time.Second).Should(Receive(MatchError(context.Canceled)))
		_, err := output(c, "true")
		Expect(err).NotTo(HaveOccurred(), "the connection stays usable")
	})

	It("lets a cancelled command finish its SIGTERM handler before returning", func() {
		c := dial()
		marker := filepath.Join(GinkgoT().TempDir(), "handled")
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() {
			done <- c.Run(cctx, fmt.Sprintf("trap 'sleep 0.3; echo handled > %s; exit 143' TERM; echo started; while :; do sleep 0.1; done", marker), nil, startedWriter(cancel))
		}()
		Eventually(done, 10*time.Second).Should(Receive(MatchError(context.Canceled)))
		Expect(marker).To(BeARegularFile(), "Run returned before the command's SIGTERM handler had finished")
	})

	It("reports what a cancelled command really did: done when it exits 0, its own exit code otherwise", func() {
		c := dial()
		for code, want := range map[int]types.GomegaMatcher{0: BeNil(), 3: And(MatchError(context.Canceled), MatchError(ContainSubstring("it exited after SIGTERM")))} {
			cctx, cancel := context.WithCancel(ctx)
			done := make(chan error)
			go func() {
				done <- c.Run(cctx, fmt.Sprintf("trap 'exit %d' TERM; echo started; while :; do sleep 0.1; done", code), nil, startedWriter(cancel))
			}()
			var err error
			Eventually(done, 10*time.Second).Should(Receive(&err))
			Expect(err).To(want, "exit %d", code)
			var exit *remote.ExitError
			Expect(errors.As(err, &exit)).To(Equal(code != 0))
		}
	})

	It("never starts a command once the context is done", func() {
		c := dial()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		marker := filepath.Join(GinkgoT().TempDir(), "ran")
		for range 50 { // the session-slot select alone would start some
			Expect(c.Run(cctx, "touch "+marker, nil, nil)).To(MatchError(context.Canceled))
		}
		Expect(marker).NotTo(BeAnExistingFile())
	})

	It("gives up on a cancelled command that outlives the grace period, saying it may still run", func() {
		cfg.CancelGrace = 200 * time.Millisecond
		c := dial()
		marker := filepath.Join(GinkgoT().TempDir(), "got-term")
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() {
			done <- c.Run(cctx, fmt.Sprintf("trap 'echo > %s' TERM; echo started; while :; do sleep 0.1; done", marker), nil, startedWriter(cancel))
		}()
		var err error
		Eventually(done, 10*time.Second).Should(Receive(&err))
		Expect(err).To(MatchError(context.Canceled))
		Expect(err.Error()).To(ContainSubstring("had not exited 200ms after SIGTERM and may still be running"))
		// Its trap runs when the shell gets to it, which on a busy machine
		// can be after the grace; the command runs on, so it does.
		Eventually(marker, 10*time.Second).Should(BeARegularFile(), "the command was sent SIGTERM")
	})

	It("ends the session when the local writer fails instead of hanging", func() {
		c := dial()
		done := make(chan error)
		go func() { done <- c.Run(ctx, "head -c 50000000 /dev/zero", nil, failingWriter{}) }()
		Eventually(done, 10*time.Second).Should(Receive(MatchError(ContainSubstring("disk full"))))
	})

	It("detects a peer that stopped answering through keepalives", func() {
		cfg.KeepAliveInterval = 200 * time.Millisecond
		c := dial()
		done := make(chan error)
		go func() { done <- c.Run(ctx, "sleep 600", nil, nil) }()
		server.freeze()
		Eventually(done, 10*time.Second).Should(Receive(HaveOccurred()))
	})
})

// startedWriter calls cancel once the command has written anything, so a
// cancellation reaches a command that is already running its traps.
func startedWriter(cancel context.CancelFunc) io.Writer {
	var once sync.Once
	return writerFunc(func(p []byte) (int, error) {
		once.Do(cancel)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// failingWriter fails like a full disk.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) {
	return 0, errors.New("disk full")
}
