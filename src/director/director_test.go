package director_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/bbr-release/bbr/src/director"
	labdirector "github.com/bbr-release/bbr/src/lab/director"
	"github.com/bbr-release/bbr/src/lab/director/labtest"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/pki"
	"github.com/bbr-release/bbr/src/orchestrator"
)

// These specs run bbr's client, which is bosh-cli's director and uaa
// packages, against the lab's Director: they prove the lab speaks the
// Director's wire format, and that the client handles it.

type recordingAgent struct {
	mu          sync.Mutex
	setUps      []string
	cleanUps    []string
	fail        error
	failCleanup error
	// holdCleanup, if set, is received from before a cleanup answers.
	holdCleanup chan struct{}
}

func (a *recordingAgent) SetUpSSH(_ context.Context, dep string, inst model.Instance, user, key string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setUps = append(a.setUps, dep+" "+inst.Slug()+" "+user+" "+strings.Fields(key)[0])
	return a.fail
}

func (a *recordingAgent) CleanUpSSH(_ context.Context, dep string, inst model.Instance, regex string) error {
	if a.holdCleanup != nil {
		<-a.holdCleanup
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cleanUps = append(a.cleanUps, dep+" "+inst.Slug()+" "+regex)
	return a.failCleanup
}

var testLab = model.Lab{
	Director: model.Director{Client: "admin", ClientSecret: "s3cret"},
	Deployments: []model.Deployment{{
		Name:     "sample",
		Manifest: "name: sample\nreleases: [{name: lab-sample, version: '1'}]\n",
		Instances: []model.Instance{
			{Group: "redis", Index: 0, ID: "id-r0", Bootstrap: true, IP: "127.0.0.2", HostPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
			{Group: "redis", Index: 1, ID: "id-r1", IP: "127.0.0.3", HostPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
			{Group: "api", Index: 0, ID: "id-a0", Bootstrap: true, IP: "127.0.0.4", HostPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
		},
	}},
}

// startLabDirector serves testLab's Director (and UAA) until the spec ends.
func startLabDirector(auth string, agent labdirector.Agent, configure ...func(*labdirector.Config)) (url, caPEM string) {
	srv := labtest.Start(testLab, auth, agent, GinkgoWriter, configure...)
	return srv.URL, srv.CA
}

var _ = Describe("the Director client against the lab Director", func() {
	var (
		agent  *recordingAgent
		ctx    = context.Background()
		logger = boshlog.NewLogger(boshlog.LevelNone)
	)

	BeforeEach(func() { agent = &recordingAgent{} })

	for _, auth := range []string{"basic", "uaa"} {
		Context("with "+auth+" auth", func() {
			var client *director.Client

			BeforeEach(func() {
				url, ca := startLabDirector(auth, agent)
				var err error
				client, err = director.New(context.Background(), director.Config{URL: url, Client: "admin", ClientSecret: "s3cret", CACert: ca}, logger)
				Expect(err).NotTo(HaveOccurred())
			})

			It("lists deployments and returns the manifest", func() {
				Expect(client.Deployments(ctx)).To(Equal([]string{"sample"}))
				Expect(client.Manifest(ctx, "sample")).To(ContainSubstring("lab-sample"))
			})

			It("lists instances with index, bootstrap and IPs through a task", func() {
				vms, err := client.VMs(ctx, "sample")
				Expect(err).NotTo(HaveOccurred())
				Expect(vms).To(ConsistOf(
					orchestrator.VM{Group: "redis", ID: "id-r0", Index: 0, Bootstrap: true, IPs: []string{"127.0.0.2"}},
					orchestrator.VM{Group: "redis", ID: "id-r1", Index: 1, IPs: []string{"127.0.0.3"}},
					orchestrator.VM{Group: "api", ID: "id-a0", Index: 0, Bootstrap: true, IPs: []string{"127.0.0.4"}},
				))
			})

			It("sets up an SSH user on one group and returns the host keys", func() {
				hosts, err := client.SetUpSSH(ctx, "sample", "redis", "bosh_abc", "ssh-ed25519 AAAAkey")
				Expect(err).NotTo(HaveOccurred())
				Expect(hosts).To(HaveLen(2))
				Expect(hosts[0].HostPublicKey).To(HavePrefix("ssh-ed25519 "))
				Expect([]string{hosts[0].IndexOrID, hosts[1].IndexOrID}).To(ConsistOf("id-r0", "id-r1"))
				Expect(agent.setUps).To(ConsistOf("sample redis/id-r0 bosh_abc ssh-ed25519", "sample redis/id-r1 bosh_abc ssh-ed25519"))
			})

			// A real Director redirects to the cleanup task at once; the
			// lab's default wait for the task would hide bbr's polling.
			Context("when the Director redirects before the task is done, as a real one does", func() {
				// requests has a line per request the Director has answered.
				var requests *gbytes.Buffer

				BeforeEach(func() {
					requests = gbytes.NewBuffer()
					url, ca := startLabDirector(auth, agent, func(c *labdirector.Config) {
						c.RedirectAtOnce = true
						c.Log = io.MultiWriter(GinkgoWriter, requests)
					})
					var err error
					client, err = director.New(context.Background(), director.Config{URL: url, Client: "admin", ClientSecret: "s3cret", CACert: ca}, logger)
					Expect(err).NotTo(HaveOccurred())
				})

				It("cleans up the user on one instance and returns once the Director's task is done", func() {
					hold := make(chan struct{})
					agent.holdCleanup = hold
					done := make(chan error, 1)
					go func() { done <- client.CleanUpSSH(ctx, "sample", "redis", "id-r1", "bosh_abc") }()
					// It has looked at the task, which cannot end before hold is closed.
					Eventually(requests).Should(gbytes.Say(`GET /tasks/\d+ 200`))
					Expect(done).NotTo(Receive(), "returned while the task was running")
					close(hold)
					Eventually(done, 5*time.Second).Should(Receive(BeNil()))
					agent.mu.Lock()
					defer agent.mu.Unlock()
					Expect(agent.cleanUps).To(Equal([]string{"sample redis/id-r1 ^bosh_abc"}))
				})

				It("reports a cleanup task that fails, with the task's error", func() {
					agent.failCleanup = errors.New("userdel: user bosh_abc is currently used by process 42")
					err := client.CleanUpSSH(ctx, "sample", "redis", "id-r1", "bosh_abc")
					Expect(err).To(MatchError(MatchRegexp(`cleaning up ssh user on redis/id-r1: task \d+ ended in state error: .*userdel: user bosh_abc is currently used .*see .bosh task \d+.`)))
					Expect(errors.Is(err, orchestrator.ErrCleanupUnconfirmed)).To(BeFalse())
				})

				It("stops waiting for a cleanup task that takes too long and says it is unconfirmed", func() {
					hold := make(chan struct{})
					agent.holdCleanup = hold
					DeferCleanup(func() { close(hold) })
					DeferCleanup(func(d time.Duration) { director.CleanupWait = d }, director.CleanupWait)
					director.CleanupWait = 300 * time.Millisecond
					err := client.CleanUpSSH(ctx, "sample", "redis", "id-r1", "bosh_abc")
					Expect(err).To(MatchError(orchestrator.ErrCleanupUnconfirmed))
					Expect(err).To(MatchError(MatchRegexp(`task \d+ still running after 300ms`)))
				})

				It("stops waiting when the run is cancelled, as an error rather than unconfirmed", func() {
					hold := make(chan struct{})
					agent.holdCleanup = hold
					DeferCleanup(func() { close(hold) })
					cctx, cancel := context.WithCancel(ctx)
					done := make(chan error, 1)
					go func() { done <- client.CleanUpSSH(cctx, "sample", "redis", "id-r1", "bosh_abc") }()
					// Cancelled while it waits for the task, once it has been
					// redirected to it (a cancel during the request itself
					// is a spec of cancel_test.go).
					Eventually(requests).Should(gbytes.Say(`GET /tasks/\d+ 200`))
					cancel()
					var err error
					Eventually(done, 5*time.Second).Should(Receive(&err))
					Expect(err).To(MatchError(context.Canceled))
					Expect(errors.Is(err, orchestrator.ErrCleanupUnconfirmed)).To(BeFalse())
				})
			})

			It("reports an unknown deployment", func() {
				_, err := client.VMs(ctx, "nope")
				Expect(err).To(MatchError(ContainSubstring("Deployment 'nope' doesn't exist")))
			})
		})
	}

	It("fails the SSH setup task when the agent fails", func() {
		agent.fail = errors.New("useradd: failed")
		url, ca := startLabDirector("basic", agent)
		client, err := director.New(context.Background(), director.Config{URL: url, Client: "admin", ClientSecret: "s3cret", CACert: ca}, logger)
		Expect(err).NotTo(HaveOccurred())
		_, err = client.SetUpSSH(ctx, "sample", "api", "bosh_abc", "ssh-ed25519 AAAAkey")
		Expect(err).To(MatchError(ContainSubstring("api")))
	})

	It("says the credentials were refused, in basic and uaa mode", func() {
		for _, auth := range []string{"basic", "uaa"} {
			url, ca := startLabDirector(auth, agent)
			client, err := director.New(context.Background(), director.Config{URL: url, Client: "admin", ClientSecret: "wrong", CACert: ca}, logger)
			if err == nil {
				_, err = client.VMs(ctx, "sample")
			}
			Expect(err).To(MatchError(ContainSubstring("refused the credentials")), auth)
		}
	})

	It("says when the Director is unreachable", func() {
		_, err := director.New(context.Background(), director.Config{URL: "https://127.0.0.1:1", Client: "a", ClientSecret: "b"}, logger)
		Expect(err).To(MatchError(director.ErrUnreachable))
	})

	It("stops waiting for a Director that never answers when its context ends", func() {
		l, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(l.Close)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = director.New(ctx, director.Config{URL: "https://" + l.Addr().String(), Client: "a", ClientSecret: "b"}, logger)
		Expect(err).To(MatchError(context.Canceled))
	})

	It("refuses a Director whose certificate the CA did not sign", func() {
		url, _ := startLabDirector("basic", agent)
		other, err := pki.NewCA("other")
		Expect(err).NotTo(HaveOccurred())
		_, err = director.New(context.Background(), director.Config{URL: url, Client: "admin", ClientSecret: "s3cret", CACert: string(other.CertPEM())}, logger)
		Expect(err).To(MatchError(ContainSubstring("certificate")))
	})
})

var _ = Describe("the credentials hint", func() {
	It("is given for bosh-cli's and the UAA's 401 answers only", func() {
		for _, msg := range []string{
			"Director responded with non-successful status code '401' response 'Not authorized'",
			"Requesting token via client credentials grant: UAA responded with non-successful status code '401' response '{}'",
		} {
			Expect(director.Simplify(errors.New(msg))).To(MatchError(HavePrefix("the Director refused the credentials")), msg)
		}
		for _, msg := range []string{
			"task 14012 ended in state error: userdel failed (see `bosh task 14012`)",
			"Director responded with non-successful status code '500' response 'copied 4010 bytes'",
		} {
			Expect(director.Simplify(errors.New(msg))).To(MatchError(msg), msg)
		}
	})
})
