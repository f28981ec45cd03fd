package errand_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/errand"
	"github.com/bbr-release/bbr/src/report"
)

var _ = Describe("the backup errand's report, metrics and webhook", func() {
	It("keeps a JSON report per run and last-run.json, updates each deployment's metrics, and posts the failure", func() {
		root, metrics := GinkgoT().TempDir(), GinkgoT().TempDir()
		var posted []string
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			posted = append(posted, string(raw))
		}))
		defer hook.Close()
		cfg, err := errand.ParseConfig([]byte(validConfig + "artifact_directory: " + root + "\nmetrics_directory: " + metrics +
			"\nwebhook: {url: \"" + hook.URL + "/hooks/s3cret\"}\n"))
		Expect(err).NotTo(HaveOccurred())
		clock := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
		var out bytes.Buffer
		r := errand.Runner{Config: cfg, Out: &out, Now: func() time.Time { return clock }, Version: "9.9.9",
			Backup: func(_ context.Context, dep string, dest artifact.Destination) (string, error) {
				clock = clock.Add(time.Minute)
				return backupNamed(root, dep, clock, dep == "cf"), nil
			}}
		Expect(r.RunBackup(context.Background())).To(MatchError(ContainSubstring("1 of 2 deployments failed: redis")))

		var run report.Run
		raw, err := os.ReadFile(filepath.Join(root, errand.ReportsDir, errand.LastRun))
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(raw, &run)).To(Succeed())
		Expect(run).To(And(HaveField("Command", "errand backup"), HaveField("Version", "9.9.9"), HaveField("OK", false)))
		Expect(run.Deployments).To(HaveLen(2))
		Expect(run.Deployments[0]).To(And(HaveField("Name", "cf"), HaveField("OK", true), HaveField("Seconds", 60.0),
			HaveField("Backup", HaveSuffix("cf_20261202T040100Z"))))
		Expect(run.Deployments[1]).To(And(HaveField("Name", "redis"), HaveField("OK", false), HaveField("Backup", HaveSuffix(".failed"))))
		runs, _ := filepath.Glob(filepath.Join(root, errand.ReportsDir, "backup-*.json"))
		Expect(runs).To(ConsistOf(HaveSuffix("backup-20261202T040000Z.json")))
		for _, f := range append(runs, filepath.Join(root, errand.ReportsDir, errand.LastRun)) {
			info, err := os.Stat(f)
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)), f)
		}
		Expect(out.String()).To(ContainSubstring("Report: " + filepath.Join(root, errand.ReportsDir, errand.LastRun)))

		cf, err := os.ReadFile(report.MetricsFile(metrics, "deployment", "cf"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(cf)).To(ContainSubstring(`bbr_backup_last_attempt_success{deployment="cf",kind="deployment"} 1`))
		redis, err := os.ReadFile(report.MetricsFile(metrics, "deployment", "redis"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(redis)).To(ContainSubstring(`bbr_backup_failures_total{deployment="redis",kind="deployment"} 1`))

		Expect(posted).To(HaveLen(1), "only the failure")
		Expect(posted[0]).To(ContainSubstring(`"text":":rotating_light: bbr: the backup of deployment redis FAILED`))
		Expect(out.String()).NotTo(ContainSubstring("s3cret"))
		Expect(strings.Count(out.String(), "Warning")).To(Equal(0))
	})

	It("reports a run stopped before any deployment (no bucket) in the report and on the webhook", func() {
		root := GinkgoT().TempDir()
		var posted []string
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			posted = append(posted, string(raw))
		}))
		defer hook.Close()
		cfg, err := errand.ParseConfig([]byte(validConfig + "artifact_directory: " + root + "\nwebhook: {url: \"" + hook.URL + "\"}\n"))
		Expect(err).NotTo(HaveOccurred())
		r := errand.Runner{Config: cfg, Out: GinkgoWriter, Now: time.Now,
			Bucket: func(context.Context) (artifact.Destination, error) {
				return nil, errors.New("s3://b: the endpoint does not answer")
			}}
		Expect(r.RunBackup(context.Background())).To(MatchError(ContainSubstring("does not answer")))
		var run report.Run
		raw, err := os.ReadFile(filepath.Join(root, errand.ReportsDir, errand.LastRun))
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(raw, &run)).To(Succeed())
		Expect(run.OK).To(BeFalse())
		Expect(run.Errors).To(Equal([]string{"s3://b: the endpoint does not answer"}))
		Expect(posted).To(ConsistOf(ContainSubstring("the backup of the backup errand's run FAILED after 0s: s3://b: the endpoint does not answer")))
	})

	It("refuses a webhook URL it cannot use without printing it", func() {
		_, err := errand.ParseConfig([]byte(validConfig + "webhook: {url: \"hooks.example.com/s3cret\"}\nmetrics_directory: relative\n"))
		Expect(err).To(MatchError(And(ContainSubstring("webhook.url: the webhook URL must be an http(s) URL"), ContainSubstring(`metrics_directory "relative" must be an absolute path`))))
		Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
	})

	It("posts scheduled runs that did not start, and one run_timeout stopped, to the webhook as failures, and warns when it cannot", func() {
		var posted []string
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			posted = append(posted, string(raw))
		}))
		defer hook.Close()
		cfg, err := errand.ParseConfig([]byte(validConfig + "webhook: {url: \"" + hook.URL + "/hooks/s3cret\"}\n"))
		Expect(err).NotTo(HaveOccurred())
		var out bytes.Buffer
		first := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
		errand.MissedRuns(cfg, &out)(context.Background(), first, 3, "the run scheduled at 2026-12-01 02:00:00 UTC was still going")
		Expect(posted).To(HaveLen(1))
		var msg struct {
			Text string            `json:"text"`
			BBR  report.Deployment `json:"bbr"`
		}
		Expect(json.Unmarshal([]byte(posted[0]), &msg)).To(Succeed())
		Expect(msg.Text).To(ContainSubstring("FAILED"))
		Expect(msg.Text).To(ContainSubstring("3 scheduled run(s) from 2026-12-02T02:00:00Z did not start: the run scheduled at 2026-12-01 02:00:00 UTC was still going"))
		Expect(msg.BBR.Kind).To(Equal(report.KindRun))
		Expect(out.String()).To(BeEmpty())

		errand.TimedOutRun(cfg, &out)(context.Background(), first, first.Add(20*time.Minute), errors.New("the run scheduled at 2026-12-02 02:00:00 UTC was stopped at its run_timeout (20m0s): 1 of 1 deployments failed: cf"))
		Expect(posted).To(HaveLen(2))
		Expect(json.Unmarshal([]byte(posted[1]), &msg)).To(Succeed())
		Expect(msg.Text).To(ContainSubstring("the scheduled backup FAILED after 20m"))
		Expect(msg.Text).To(ContainSubstring("was stopped at its run_timeout (20m0s): 1 of 1 deployments failed: cf"))
		Expect(msg.BBR.Kind).To(Equal(report.KindRun))
		Expect(out.String()).To(BeEmpty())

		hook.Close()
		errand.MissedRuns(cfg, &out)(context.Background(), first, 1, "down")
		Expect(out.String()).To(ContainSubstring("Warning: notifying the webhook at 127.0.0.1"))
		Expect(out.String()).NotTo(ContainSubstring("s3cret"))
	})
})
