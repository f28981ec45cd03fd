package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/orchestrator"
	"github.com/bbr-release/bbr/src/report"
)

// fakeDirector answers /info (basic auth) and lists deployments.
func fakeDirector(deployments string) *httptest.Server {
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/info":
			_, _ = io.WriteString(w, `{"name":"fake","uuid":"u","version":"280.0.0","user_authentication":{"type":"basic","options":{}}}`)
		case "/deployments":
			_, _ = io.WriteString(w, deployments)
		default:
			http.NotFound(w, r)
		}
	}))
	DeferCleanup(server.Close)
	return server
}

// setEnv sets (or, "", clears) a variable for the spec.
func setEnv(name, value string) {
	old, had := os.LookupEnv(name)
	if value == "" {
		Expect(os.Unsetenv(name)).To(Succeed())
	} else {
		Expect(os.Setenv(name, value)).To(Succeed())
	}
	DeferCleanup(func() {
		if had {
			_ = os.Setenv(name, old)
		} else {
			_ = os.Unsetenv(name)
		}
	})
}

// hookServer records what is posted to it.
func hookServer() *[]string {
	var posted []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		posted = append(posted, string(raw))
	}))
	DeferCleanup(hook.Close)
	setEnv(webhookEnv, hook.URL+"/hooks/s3cret")
	return &posted
}

// inTempDir runs the spec in a directory of its own: a failed command
// writes bbr-<time>.err.log there. urfave/cli must not exit the process.
func inTempDir() {
	exiter := cli.OsExiter
	cli.OsExiter = func(int) {}
	DeferCleanup(func() { cli.OsExiter = exiter })
	wd, err := os.Getwd()
	Expect(err).NotTo(HaveOccurred())
	Expect(os.Chdir(GinkgoT().TempDir())).To(Succeed())
	DeferCleanup(os.Chdir, wd)
}

func runBBR(args ...string) (string, error) {
	var errOut bytes.Buffer
	s := session{ctx: context.Background(), version: "test", streams: Streams{Out: GinkgoWriter, Err: &errOut},
		leftovers: &orchestrator.Leftovers{}}
	err := newApp(s).Run(append([]string{"bbr"}, args...))
	return errOut.String(), err
}

var _ = Describe("--all-deployments backup stopped before any deployment", func() {
	var (
		posted             *[]string
		dir, metrics, path string
		artifacts          string
	)

	BeforeEach(func() {
		inTempDir()
		posted = hookServer()
		dir = GinkgoT().TempDir()
		metrics, path, artifacts = filepath.Join(dir, "metrics"), filepath.Join(dir, "run.json"), GinkgoT().TempDir()
		for _, name := range []string{"BOSH_ENVIRONMENT", "BOSH_CA_CERT", "CA_CERT", "BOSH_DEPLOYMENT"} {
			setEnv(name, "")
		}
		setEnv("BOSH_CLIENT", "admin")
		setEnv("BOSH_CLIENT_SECRET", "s3cret-password")
	})

	backup := func(director *httptest.Server) (string, error) {
		setEnv("BOSH_ENVIRONMENT", director.URL)
		setEnv("BOSH_CA_CERT", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: director.Certificate().Raw})))
		return runBBR("deployment", "--all-deployments", "backup", "--artifact-path", artifacts, "--report", path, "--metrics-dir", metrics)
	}

	expectRecorded := func(why string, failures string) {
		var run report.Run
		raw, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred(), "a report")
		Expect(json.Unmarshal(raw, &run)).To(Succeed())
		Expect(run.OK).To(BeFalse())
		Expect(strings.Join(run.Errors, "\n")).To(ContainSubstring(why))
		prom, err := os.ReadFile(report.MetricsFile(metrics, report.KindRun, report.AllDeployments))
		Expect(err).NotTo(HaveOccurred(), "metrics")
		Expect(string(prom)).To(ContainSubstring(`bbr_backup_last_attempt_success{deployment="all-deployments",kind="run"} 0`))
		Expect(string(prom)).To(ContainSubstring(`bbr_backup_failures_total{deployment="all-deployments",kind="run"} ` + failures))
		Expect(*posted).To(HaveLen(1), "posted")
		Expect((*posted)[0]).To(ContainSubstring("FAILED"))
		Expect((*posted)[0]).To(ContainSubstring(why))
	}

	It("reports, counts and posts a Director that is down", func() {
		down := fakeDirector("[]")
		down.Close()
		_, err := backup(down)
		Expect(err).To(MatchError(ContainSubstring("unreachable")))
		expectRecorded("unreachable", "1")
	})

	It("reports, counts and posts a Director that lists nothing", func() {
		_, err := backup(fakeDirector("[]"))
		Expect(err).To(MatchError(ContainSubstring("Failed to find any deployments")))
		expectRecorded("Failed to find any deployments", "1")
	})
})

var _ = Describe("the backup errand with a Director that does not answer", func() {
	It("reports, counts and posts the failed run", func() {
		inTempDir()
		posted := hookServer()
		root, metrics := GinkgoT().TempDir(), GinkgoT().TempDir()
		director := fakeDirector("[]")
		director.Close()
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: director.Certificate().Raw})
		config := filepath.Join(GinkgoT().TempDir(), "config.yml")
		Expect(os.WriteFile(config, []byte(`director: {url: "`+director.URL+`", client: c, client_secret: s, ca_cert: "`+
			strings.ReplaceAll(string(ca), "\n", `\n`)+`"}
deployments: [cf]
artifact_directory: `+root+`
metrics_directory: `+metrics+`
webhook: {url: "`+os.Getenv(webhookEnv)+`"}
`), 0o600)).To(Succeed())
		_, err := runBBR("errand", "backup", "--config", config)
		Expect(err).To(MatchError(ContainSubstring("unreachable")))
		raw, err := os.ReadFile(filepath.Join(root, ".reports", "last-run.json"))
		Expect(err).NotTo(HaveOccurred())
		var run report.Run
		Expect(json.Unmarshal(raw, &run)).To(Succeed())
		Expect(run.OK).To(BeFalse())
		prom, err := os.ReadFile(report.MetricsFile(metrics, report.KindDeployment, "cf"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(prom)).To(ContainSubstring(`bbr_backup_last_attempt_success{deployment="cf",kind="deployment"} 0`))
		Expect(*posted).To(ConsistOf(ContainSubstring("unreachable")))
	})
})

var _ = Describe("deployment restore's report, metrics and webhook", func() {
	It("records a failed restore with --report and --metrics-dir, and posts it", func() {
		inTempDir()
		posted := hookServer()
		for _, name := range []string{"CA_CERT", "BOSH_DEPLOYMENT"} {
			setEnv(name, "")
		}
		director := fakeDirector("[]")
		setEnv("BOSH_ENVIRONMENT", director.URL)
		setEnv("BOSH_CA_CERT", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: director.Certificate().Raw})))
		setEnv("BOSH_CLIENT", "admin")
		setEnv("BOSH_CLIENT_SECRET", "s3cret-password")
		stamp := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
		a, err := artifact.Create(GinkgoT().TempDir(), "cf", stamp)
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Finish(stamp, nil)).To(Succeed())
		dir := GinkgoT().TempDir()
		path, metrics := filepath.Join(dir, "restore.json"), filepath.Join(dir, "metrics")

		_, err = runBBR("deployment", "-d", "cf", "restore", "--artifact-path", a.Path, "--report", path, "--metrics-dir", metrics)
		Expect(err).To(HaveOccurred(), "the fake Director has no deployment cf")
		var run report.Run
		Expect(json.Unmarshal(must(os.ReadFile(path)), &run)).To(Succeed())
		Expect(run).To(And(HaveField("Kind", "restore"), HaveField("Command", "deployment restore"), HaveField("OK", false)))
		Expect(run.Deployments).To(ConsistOf(And(HaveField("Name", "cf"), HaveField("Operation", "restore"), HaveField("Backup", a.Path))))
		prom := string(must(os.ReadFile(report.RestoreMetricsFile(metrics, report.KindDeployment, "cf"))))
		Expect(prom).To(ContainSubstring(`bbr_restore_last_attempt_success{deployment="cf",kind="deployment"} 0`))
		Expect(prom).To(ContainSubstring(`bbr_restore_failures_total{deployment="cf",kind="deployment"} 1`))
		Expect(*posted).To(ConsistOf(ContainSubstring("the restore of deployment cf FAILED")))
	})
})

func must[T any](v T, err error) T {
	Expect(err).NotTo(HaveOccurred())
	return v
}

var _ = Describe("bbr director stopped before it reaches the VM", func() {
	It("reports, counts and posts a backup and a restore whose key does not read", func() {
		inTempDir()
		posted := hookServer()
		dir := GinkgoT().TempDir()
		metrics := filepath.Join(dir, "metrics")
		for _, op := range []string{"backup", "restore"} {
			path := filepath.Join(dir, op+".json")
			args := []string{"director", "--host", "10.0.0.6", "--username", "jumpbox", "--private-key-path", filepath.Join(dir, "no-such-key"),
				op, "--artifact-path", dir, "--report", path, "--metrics-dir", metrics}
			if op == "restore" {
				stamp := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
				a, err := artifact.Create(GinkgoT().TempDir(), "10.0.0.6", stamp)
				Expect(err).NotTo(HaveOccurred())
				Expect(a.Finish(stamp, nil)).To(Succeed())
				args[len(args)-5] = a.Path
			}
			_, err := runBBR(args...)
			Expect(err).To(HaveOccurred())
			var run report.Run
			raw, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred(), "a report of the %s", op)
			Expect(json.Unmarshal(raw, &run)).To(Succeed())
			Expect(run.OK).To(BeFalse())
		}
		Expect(report.MetricsFile(metrics, report.KindDirector, "10.0.0.6")).To(BeAnExistingFile())
		Expect(report.RestoreMetricsFile(metrics, report.KindDirector, "10.0.0.6")).To(BeAnExistingFile())
		Expect(*posted).To(HaveLen(2))
	})
})
