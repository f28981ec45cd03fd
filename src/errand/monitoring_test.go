package errand_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/errand"
	"github.com/bbr-release/bbr/src/report"
)

// metric reads one value from a textfile the errand wrote ("" when the
// file or the series is missing).
func metric(dir, kind, name, series string) string {
	raw, err := os.ReadFile(report.MetricsFile(dir, kind, name))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, series+"{") {
			_, value, _ := strings.Cut(line, "} ")
			return value
		}
	}
	return ""
}

var _ = Describe("a backup errand run that fails before any deployment", func() {
	var (
		root, metrics string
		posted        []string
		cfg           errand.Config
		clock         time.Time
	)

	BeforeEach(func() {
		root, metrics = GinkgoT().TempDir(), GinkgoT().TempDir()
		posted = nil
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			posted = append(posted, string(raw))
		}))
		DeferCleanup(hook.Close)
		var err error
		cfg, err = errand.ParseConfig([]byte(validConfig + "artifact_directory: " + root + "\nmetrics_directory: " + metrics +
			"\nwebhook: {url: \"" + hook.URL + "\"}\n"))
		Expect(err).NotTo(HaveOccurred())
		clock = time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	})

	runner := func() errand.Runner {
		return errand.Runner{Config: cfg, Out: GinkgoWriter, Now: func() time.Time { return clock },
			Backup: func(_ context.Context, dep string, _ artifact.Destination) (string, error) {
				clock = clock.Add(time.Minute)
				return backupNamed(root, dep, clock, true), nil
			}}
	}

	It("counts a failed attempt of every configured deployment, which a good run had left at 1", func() {
		Expect(runner().RunBackup(context.Background())).To(Succeed())
		Expect(metric(metrics, "deployment", "cf", report.MetricLastOK)).To(Equal("1"))

		r := runner()
		r.SetupError = errors.New("bosh director unreachable or unhealthy: connection refused")
		Expect(r.RunBackup(context.Background())).To(MatchError(ContainSubstring("unreachable")))
		for _, d := range []string{"cf", "redis"} {
			Expect(metric(metrics, "deployment", d, report.MetricLastOK)).To(Equal("0"), d)
			Expect(metric(metrics, "deployment", d, report.MetricFailuresTotal)).To(Equal("1"), d)
			Expect(metric(metrics, "deployment", d, report.MetricLastSuccess)).NotTo(BeEmpty(), "the last success is kept")
		}
		Expect(posted).To(ConsistOf(ContainSubstring("bosh director unreachable or unhealthy")))
	})

	It("tightens a reports folder and reports an earlier release left readable", func() {
		dir := filepath.Join(root, errand.ReportsDir)
		Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
		Expect(os.Chmod(dir, 0o755)).To(Succeed())
		old := filepath.Join(dir, "backup-20261201T040000Z.json")
		Expect(os.WriteFile(old, []byte("{}"), 0o644)).To(Succeed())
		Expect(runner().RunBackup(context.Background())).To(Succeed())
		info, err := os.Stat(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o700)))
		info, err = os.Stat(old)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))
	})

	It("with all_deployments and no list, counts the run itself until a run gets through to its deployments", func() {
		cfg.Deployments, cfg.AllDeployments = nil, true
		r := runner()
		r.Deployments = func(context.Context) ([]string, error) { return nil, errors.New("connection refused") }
		Expect(r.RunBackup(context.Background())).To(MatchError(ContainSubstring("listing the Director's deployments")))
		r.Deployments = func(context.Context) ([]string, error) { return nil, nil }
		Expect(r.RunBackup(context.Background())).To(MatchError(ContainSubstring("no deployments to back up")))
		Expect(metric(metrics, "run", report.AllDeployments, report.MetricLastOK)).To(Equal("0"))
		Expect(metric(metrics, "run", report.AllDeployments, report.MetricFailuresTotal)).To(Equal("2"))
		Expect(posted).To(HaveLen(2))

		r.Deployments = func(context.Context) ([]string, error) { return []string{"cf"}, nil }
		Expect(r.RunBackup(context.Background())).To(Succeed())
		Expect(report.MetricsFile(metrics, "run", report.AllDeployments)).NotTo(BeAnExistingFile(), "resolved")
		Expect(metric(metrics, "deployment", "cf", report.MetricLastOK)).To(Equal("1"))

		r.Bucket = func(context.Context) (artifact.Destination, error) { return nil, errors.New("s3://b: no answer") }
		Expect(r.RunBackup(context.Background())).To(MatchError(ContainSubstring("no answer")))
		Expect(metric(metrics, "deployment", "cf", report.MetricLastOK)).To(Equal("0"), "listed, then stopped")
		Expect(report.MetricsFile(metrics, "run", report.AllDeployments)).NotTo(BeAnExistingFile(), "the deployments were known")
	})
})

var _ = Describe("the restore errand's report, metrics and webhook", func() {
	It("records each restore as a backup is recorded: last-restore.json, bbr_restore_* metrics, the failure posted", func() {
		root, metrics := GinkgoT().TempDir(), GinkgoT().TempDir()
		var posted []string
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			posted = append(posted, string(raw))
		}))
		defer hook.Close()
		cfg, err := errand.ParseConfig([]byte(validConfig + "artifact_directory: " + root + "\nmetrics_directory: " + metrics +
			"\nwebhook: {url: \"" + hook.URL + "\"}\nrestore: {deployment: cf}\n"))
		Expect(err).NotTo(HaveOccurred())
		clock := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
		backup := backupNamed(root, "cf", clock, true)
		fail := errors.New("Error attempting to run restore for job pg on db/0: exit code 1")
		r := errand.Runner{Config: cfg, Out: GinkgoWriter, Now: func() time.Time { return clock }, Version: "9.9.9",
			Restore: func(context.Context, string, artifact.Source) error {
				clock = clock.Add(time.Minute)
				return fail
			}}
		Expect(r.RunRestore(context.Background())).To(MatchError(ContainSubstring("exit code 1")))
		last := filepath.Join(root, errand.ReportsDir, errand.LastRestore)
		var run report.Run
		Expect(json.Unmarshal(must(os.ReadFile(last)), &run)).To(Succeed())
		Expect(run).To(And(HaveField("Kind", "restore"), HaveField("Command", "errand restore"), HaveField("OK", false)))
		Expect(run.Deployments).To(ConsistOf(And(HaveField("Name", "cf"), HaveField("Operation", "restore"),
			HaveField("Backup", backup), HaveField("Seconds", 60.0))))
		Expect(must(os.Stat(last)).Mode().Perm()).To(Equal(os.FileMode(0o600)))
		Expect(filepath.Join(root, errand.ReportsDir, errand.LastRun)).NotTo(BeAnExistingFile(), "the scheduler's stays the backup's")
		Expect(metric(metrics, "restore_deployment", "cf", report.MetricRestoreLastOK)).To(Equal("0"))
		Expect(metric(metrics, "restore_deployment", "cf", report.MetricRestoreFailuresTotal)).To(Equal("1"))
		Expect(posted).To(ConsistOf(ContainSubstring("the restore of deployment cf FAILED after 1m0s: restoring cf from " + backup + ": " + fail.Error())))

		fail = nil
		Expect(r.RunRestore(context.Background())).To(Succeed())
		Expect(metric(metrics, "restore_deployment", "cf", report.MetricRestoreLastOK)).To(Equal("1"))
		Expect(metric(metrics, "restore_deployment", "cf", report.MetricRestoreLastSuccess)).To(Equal(strconv.FormatFloat(float64(clock.Unix()), 'g', -1, 64)))
		Expect(metric(metrics, "restore_deployment", "cf", report.MetricRestoreFailuresTotal)).To(Equal("1"))
		Expect(metric(metrics, "deployment", "cf", report.MetricLastOK)).To(BeEmpty(), "the backup's textfile is not touched")
		Expect(posted).To(HaveLen(1), "a good restore is posted only with on_success")

		r.SetupError = errors.New("bosh director unreachable or unhealthy")
		Expect(r.RunRestore(context.Background())).To(MatchError(ContainSubstring("unreachable")))
		Expect(metric(metrics, "restore_deployment", "cf", report.MetricRestoreFailuresTotal)).To(Equal("2"))
		Expect(posted).To(HaveLen(2))
	})
})

func must[T any](v T, err error) T {
	Expect(err).NotTo(HaveOccurred())
	return v
}
