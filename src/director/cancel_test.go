package director_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/director"
	"github.com/bbr-release/bbr/src/orchestrator"
)

// heldDirector answers /info (basic auth) and holds every other request
// until the client gives up on it, signalling on received first: a
// Director that has the request and has not answered it yet.
func heldDirector() (url, caPEM string, received <-chan string) {
	got, stop := make(chan string, 16), make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/info" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"name":"held","uuid":"u","version":"282.0.0","user_authentication":{"type":"basic","options":{}}}`))
			return
		}
		got <- r.Method + " " + r.URL.Path
		select {
		case <-r.Context().Done():
		case <-stop: // bosh-cli's calls take no context: they end here
		}
	}))
	DeferCleanup(srv.Close)
	DeferCleanup(func() { close(stop) }) // runs first
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv.URL, string(ca), got
}

var _ = Describe("a Director call cancelled before the Director answers", func() {
	var (
		client   *director.Client
		received <-chan string
	)

	BeforeEach(func() {
		var url, ca string
		url, ca, received = heldDirector()
		var err error
		client, err = director.New(context.Background(), director.Config{URL: url, Client: "admin", ClientSecret: "s3cret", CACert: ca},
			boshlog.NewLogger(boshlog.LevelNone))
		Expect(err).NotTo(HaveOccurred())
	})

	// The error decides what the operator is told: a cancelled run, not a
	// Director that is down.
	expectCancelled := func(err error) {
		Expect(err).To(MatchError(context.Canceled))
		Expect(errors.Is(err, director.ErrUnreachable)).To(BeFalse(), err.Error())
		Expect(errors.Is(err, orchestrator.ErrCleanupUnconfirmed)).To(BeFalse(), err.Error())
	}

	It("returns the cancellation from an SSH cleanup whose request is in flight", func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- client.CleanUpSSH(ctx, "sample", "redis", "id-r1", "bosh_abc") }()
		Eventually(received).Should(Receive(Equal("POST /deployments/sample/ssh")))
		cancel()
		var err error
		Eventually(done).Should(Receive(&err))
		expectCancelled(err)
	})

	It("returns the cancellation from every bosh-cli call", func() {
		calls := map[string]func(context.Context) error{
			"deployments": func(ctx context.Context) error { _, err := client.Deployments(ctx); return err },
			"vms":         func(ctx context.Context) error { _, err := client.VMs(ctx, "sample"); return err },
			"manifest":    func(ctx context.Context) error { _, err := client.Manifest(ctx, "sample"); return err },
		}
		for name, f := range calls {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- f(ctx) }()
			Eventually(received).Should(Receive(HavePrefix("GET ")), name)
			cancel()
			var err error
			Eventually(done).Should(Receive(&err), name)
			expectCancelled(err)
			Expect(strings.ToLower(err.Error())).To(ContainSubstring("cancel"), name)
		}
	})

	It("returns the cancellation, and that the set-up may not have finished, from an SSH set-up in flight", func() {
		DeferCleanup(func(d time.Duration) { director.SetUpGrace = d }, director.SetUpGrace)
		director.SetUpGrace = time.Millisecond // the held set-up never ends
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := client.SetUpSSH(ctx, "sample", "redis", "bosh_abc", "ssh-ed25519 AAAAkey")
			done <- err
		}()
		Eventually(received).Should(Receive(Equal("POST /deployments/sample/ssh")))
		cancel()
		var err error
		Eventually(done).Should(Receive(&err))
		Expect(err).To(MatchError(orchestrator.ErrSetUpUnfinished))
		expectCancelled(err)
	})
})
