package director_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"sync"

	boshdir "github.com/cloudfoundry/bosh-cli/v7/director"
	boshuaa "github.com/cloudfoundry/bosh-cli/v7/uaa"
	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/bbr-release/bbr/src/lab/director"
	"github.com/bbr-release/bbr/src/lab/director/labtest"
	"github.com/bbr-release/bbr/src/lab/model"
)

const (
	client  = "admin"
	secret  = "s3cret-Pa55"
	hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	userKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKz1+L0rKq3mr2EO1Y5bkOEgsUsyW8fQ0X3Xm4Q5eGeU bbr"
)

const sampleManifest = `---
name: sample
releases:
- name: lab-sample
  version: latest
- name: redis
  version: 1.10
stemcells:
- alias: default
  os: ubuntu-jammy
  version: latest
instance_groups:
- name: redis
  instances: 2
  vm_type: small
  jobs: [{name: redis, release: redis}]
- name: api
  instances: 1
  vm_type: default
  jobs: [{name: api, release: lab-sample}]
- name: smoke-tests
  lifecycle: errand
  instances: 1
  jobs: [{name: smoke, release: lab-sample}]
`

// testLab has two deployments; sample's smoke-tests errand has no instances,
// as in a real lab.
func testLab() model.Lab {
	return model.Lab{
		Dir:      "/var/lib/bbr-lab-test",
		Director: model.Director{Client: client, ClientSecret: secret},
		Deployments: []model.Deployment{
			{
				Name:     "sample",
				Manifest: sampleManifest,
				Instances: []model.Instance{
					{Group: "redis", Index: 0, ID: "id-r0", Bootstrap: true, AZ: "z1", IP: "127.77.1.10", HostPublicKey: hostKey, Jobs: []string{"redis"}},
					{Group: "redis", Index: 1, ID: "id-r1", AZ: "z2", IP: "127.77.1.11", HostPublicKey: hostKey, Jobs: []string{"redis"}},
					{Group: "api", Index: 0, ID: "id-a0", Bootstrap: true, AZ: "z1", IP: "127.77.1.12", HostPublicKey: hostKey, Jobs: []string{"api"}},
				},
			},
			{
				Name:      "other",
				Manifest:  "name: other\nreleases: [{name: other, version: '3'}]\n",
				Instances: []model.Instance{{Group: "db", Index: 0, ID: "id-d0", Bootstrap: true, IP: "127.77.2.10", Jobs: []string{"db"}}},
			},
		},
	}
}

// agentCall is one call to the fake agent, one string per argument.
type agentCall struct {
	Deployment, Instance, User, Key, Regex string
}

// fakeAgent records its calls and fails for the instance IDs in fail
// ("*" fails every instance).
type fakeAgent struct {
	mu       sync.Mutex
	setUps   []agentCall
	cleanUps []agentCall
	fail     map[string]error
	// block, if set, is received from before answering.
	block chan struct{}
}

func (a *fakeAgent) SetUpSSH(_ context.Context, dep string, inst model.Instance, user, key string) error {
	a.wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setUps = append(a.setUps, agentCall{Deployment: dep, Instance: inst.Slug(), User: user, Key: key})
	return a.failure(inst)
}

func (a *fakeAgent) CleanUpSSH(_ context.Context, dep string, inst model.Instance, regex string) error {
	a.wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cleanUps = append(a.cleanUps, agentCall{Deployment: dep, Instance: inst.Slug(), Regex: regex})
	return a.failure(inst)
}

func (a *fakeAgent) wait() {
	if a.block != nil {
		<-a.block
	}
}

func (a *fakeAgent) failure(inst model.Instance) error {
	if err, ok := a.fail[inst.ID]; ok {
		return err
	}
	return a.fail["*"]
}

func (a *fakeAgent) SetUps() []agentCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.setUps)
}

func (a *fakeAgent) CleanUps() []agentCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.cleanUps)
}

// labDirector is a running lab Director (and UAA) for one spec, with its
// request log (gbytes.Buffer is safe for the handlers' concurrent writes).
type labDirector struct {
	labtest.Server
	Log *gbytes.Buffer
}

// startDirector serves testLab's Director and UAA until the spec ends.
func startDirector(auth string, agent director.Agent, configure ...func(*director.Config)) labDirector {
	log := gbytes.NewBuffer()
	return labDirector{Server: labtest.Start(testLab(), auth, agent, log, configure...), Log: log}
}

var logger = boshlog.NewLogger(boshlog.LevelNone)

// boshClient is bosh-cli's Director client, set up as the bosh CLI and
// bbr set it up: basic auth, or a UAA client-credentials token session.
func (d labDirector) boshClient(id, pass string, reporter boshdir.TaskReporter) boshdir.Director {
	cfg, err := boshdir.NewConfigFromURL(d.URL)
	Expect(err).NotTo(HaveOccurred())
	cfg.CACert = d.CA
	if d.Lab.Director.Auth == "uaa" {
		cfg.TokenFunc = boshuaa.NewClientTokenSession(d.uaaClient(id, pass)).TokenFunc
	} else {
		cfg.Client, cfg.ClientSecret = id, pass
	}
	if reporter == nil {
		reporter = boshdir.NewNoopTaskReporter()
	}
	dir, err := boshdir.NewFactory(logger).New(cfg, reporter, boshdir.NewNoopFileReporter())
	Expect(err).NotTo(HaveOccurred())
	return dir
}

// anonymousClient has no credentials, as bbr's first call to /info.
func (d labDirector) anonymousClient() boshdir.Director {
	cfg, err := boshdir.NewConfigFromURL(d.URL)
	Expect(err).NotTo(HaveOccurred())
	cfg.CACert = d.CA
	dir, err := boshdir.NewFactory(logger).New(cfg, boshdir.NewNoopTaskReporter(), boshdir.NewNoopFileReporter())
	Expect(err).NotTo(HaveOccurred())
	return dir
}

func (d labDirector) uaaClient(id, pass string) boshuaa.UAA {
	cfg, err := boshuaa.NewConfigFromURL(d.UAAURL)
	Expect(err).NotTo(HaveOccurred())
	cfg.Client, cfg.ClientSecret, cfg.CACert = id, pass, d.CA
	uaa, err := boshuaa.NewFactory(logger).New(cfg)
	Expect(err).NotTo(HaveOccurred())
	return uaa
}

// httpClient trusts the lab CA and does not follow redirects, to see the
// Director's answers as they are.
func (d labDirector) httpClient() *http.Client {
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM([]byte(d.CA))).To(BeTrue())
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// recordingReporter keeps the task output bosh-cli reports, which the bosh
// CLI prints (events, including a failed task's error).
type recordingReporter struct {
	mu     sync.Mutex
	output bytes.Buffer
	states []string
}

func (r *recordingReporter) TaskStarted(int) {}

func (r *recordingReporter) TaskFinished(id int, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, fmt.Sprintf("%d:%s", id, state))
}

func (r *recordingReporter) TaskOutputChunk(_ int, chunk []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.output.Write(chunk)
}

func (r *recordingReporter) Output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.output.String()
}
