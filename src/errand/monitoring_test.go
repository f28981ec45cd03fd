package errand_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
