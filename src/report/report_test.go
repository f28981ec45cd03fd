package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
	"github.com/bbr-release/bbr/src/report"
)

// promtool is Debian's prometheus package's, installed by scripts/test.
func promtool(args ...string) (string, error) {
	path, err := exec.LookPath("promtool")
	Expect(err).NotTo(HaveOccurred(), "scripts/test installs promtool (Debian's prometheus package)")
	out, err := exec.Command(path, args...).CombinedOutput()
	return string(out), err
}

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

// goodBackup writes a backup of cf with two tars and returns it opened.
func goodBackup(dir string) artifact.Source {
	w, err := artifact.Local{Dir: dir}.Create(context.Background(), artifact.BackupName("cf", t0), t0)
	Expect(err).NotTo(HaveOccurred())
	for i, files := range []map[string][]byte{{"./a": []byte("alpha")}, {"./b": bytes.Repeat([]byte("b"), 4096)}} {
		sums, _, err := w.WriteTar(artifact.InstanceFileName("db", string(rune('0'+i)), "pg"), bytes.NewReader(destinationtest.MakeTar(files)))
		Expect(err).NotTo(HaveOccurred())
		Expect(w.AddInstanceArtifact("db", i, "pg", sums)).To(Succeed())
	}
	Expect(w.RecordLockWindow(t0, t0.Add(1500*time.Millisecond))).To(Succeed())
	Expect(w.Finish(t0.Add(time.Minute), nil)).To(Succeed())
	src, err := artifact.Local{Dir: dir}.Open(context.Background(), artifact.BackupName("cf", t0))
	Expect(err).NotTo(HaveOccurred())
	return src
}

var _ = Describe("the JSON report", func() {
	It("records every deployment as it finishes, with its backup's files, sizes and lock window", func() {
		dir := GinkgoT().TempDir()
		path := filepath.Join(dir, "report.json")
		rec := report.NewRecorder(path, "", report.OpBackup, "deployment backup", "1.2.3", t0)
		good := report.Attempt(report.KindDeployment, "cf", t0, t0.Add(time.Minute), nil)
		good.Describe(goodBackup(GinkgoT().TempDir()))
		times := &report.CopyTimes{}
		times.Record("db-1-pg.tar", 2500*time.Millisecond)
		good.SetCopyTimes(times.Take())
		Expect(times.Take()).To(BeEmpty(), "taken")
		Expect(rec.Add(good)).To(Succeed())

		var run report.Run
		Expect(json.Unmarshal(must(os.ReadFile(path)), &run)).To(Succeed())
		Expect(run.OK).To(BeTrue())
		Expect(run.Deployments).To(HaveLen(1))
		d := run.Deployments[0]
		Expect(d).To(And(HaveField("Name", "cf"), HaveField("OK", true), HaveField("Seconds", 60.0), HaveField("LockWindowSeconds", 1.5)))
		Expect(d.Files).To(HaveLen(2))
		Expect(d.Files[0]).To(And(HaveField("Name", "db-0-pg.tar"), HaveField("Instance", "db/0"), HaveField("Job", "pg")))
		Expect(d.Files[1].Bytes).To(BeNumerically(">", 4096))
		Expect(d.Files[1].Seconds).To(Equal(2.5))
		Expect(d.Files[0].Seconds).To(BeZero(), "not known")
		Expect(d.Bytes).To(BeNumerically(">", d.Files[0].Bytes+d.Files[1].Bytes), "and the metadata")

		bad := report.Attempt(report.KindDeployment, "redis", t0, t0.Add(2*time.Minute), errors.New("1 error occurred:\n\terror 1:\n\tredis/0 lock: exit 1"))
		Expect(rec.Add(bad)).To(Succeed())
		Expect(json.Unmarshal(must(os.ReadFile(path)), &run)).To(Succeed())
		Expect(run.OK).To(BeFalse())
		Expect(run.Deployments[1].Errors).To(Equal([]string{"1 error occurred:", "error 1:", "redis/0 lock: exit 1"}))
		Expect(must(os.Stat(path)).Mode().Perm()).To(Equal(os.FileMode(0o600)))
	})
})

var _ = Describe("the Prometheus textfile", func() {
	var dir string
	BeforeEach(func() { dir = GinkgoT().TempDir() })
	values := func(deployment string) map[string]float64 {
		out := map[string]float64{}
		for _, line := range strings.Split(string(must(os.ReadFile(report.MetricsFile(dir, "deployment", deployment)))), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, rest, _ := strings.Cut(line, "{")
			_, value, _ := strings.Cut(rest, "} ")
			out[name] = must(strconv.ParseFloat(value, 64))
		}
		return out
	}

	It("passes promtool check metrics, and carries the last success over a failure", func() {
		good := report.Attempt(report.KindDeployment, "cf", t0, t0.Add(90*time.Second), nil)
		good.Describe(goodBackup(GinkgoT().TempDir()))
		Expect(report.WriteMetrics(dir, good)).To(Succeed())
		file := report.MetricsFile(dir, "deployment", "cf")
		Expect(filepath.Base(file)).To(Equal("bbr_deployment_cf.prom"))
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = bytes.NewReader(must(os.ReadFile(file)))
		lint, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", lint)
		Expect(string(lint)).To(BeEmpty(), "no naming or unit complaints")

		v := values("cf")
		success := float64(t0.Add(90 * time.Second).Unix())
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_attempt_success", 1.0))
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_success_timestamp_seconds", success))
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_success_lock_window_seconds", 1.5))
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_attempt_duration_seconds", 90.0))
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_success_size_bytes", BeNumerically(">", 8000)))
		Expect(v).To(HaveKeyWithValue("bbr_backup_failures_total", 0.0))

		for i := 1; i <= 2; i++ {
			failed := report.Attempt(report.KindDeployment, "cf", t0.Add(time.Hour), t0.Add(time.Hour+time.Duration(i)*time.Minute), errors.New("boom"))
			Expect(report.WriteMetrics(dir, failed)).To(Succeed())
		}
		v = values("cf")
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_attempt_success", 0.0))
		Expect(v).To(HaveKeyWithValue("bbr_backup_failures_total", 2.0))
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_success_timestamp_seconds", success), "the failure keeps the last success")
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_success_lock_window_seconds", 1.5))
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_attempt_timestamp_seconds", float64(t0.Add(time.Hour+2*time.Minute).Unix())))
		entries, _ := os.ReadDir(dir)
		Expect(entries).To(HaveLen(1), "written atomically: no temporary file left")

		// A good backup whose run failed after it (an unlock): a success
		// to BBRBackupTooOld, a failure to BBRBackupFailed.
		unlockFailed := report.Attempt(report.KindDeployment, "cf", t0.Add(2*time.Hour), t0.Add(3*time.Hour), errors.New("unlock failed"))
		unlockFailed.Describe(goodBackup(GinkgoT().TempDir()))
		Expect(report.WriteMetrics(dir, unlockFailed)).To(Succeed())
		v = values("cf")
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_attempt_success", 0.0))
		Expect(v).To(HaveKeyWithValue("bbr_backup_failures_total", 3.0))
		Expect(v).To(HaveKeyWithValue("bbr_backup_last_success_timestamp_seconds", float64(t0.Add(3*time.Hour).Unix())))
	})

	It("refuses to overwrite a textfile it cannot read, so the failure count is never reset silently", func() {
		Expect(os.WriteFile(report.MetricsFile(dir, "deployment", "cf"), []byte("not { metrics\n"), 0o644)).To(Succeed())
		err := report.WriteMetrics(dir, report.Attempt(report.KindDeployment, "cf", t0, t0, nil))
		Expect(err).To(MatchError(ContainSubstring("does not parse as Prometheus metrics (remove it to start over)")))
	})

	It("names a Director's file safely, keeping its name in the label", func() {
		for _, name := range []string{"fd00::6", "fd00__6", "fd00:_6"} {
			Expect(report.WriteMetrics(dir, report.Attempt(report.KindDirector, name, t0, t0, nil))).To(Succeed())
		}
		files, err := filepath.Glob(filepath.Join(dir, "bbr_director_fd00__6*.prom"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(3), "names that differ never share a file")
		Expect(report.MetricsFile(dir, "director", "fd00__6")).To(HaveSuffix("/bbr_director_fd00__6.prom"))
		raw := must(os.ReadFile(report.MetricsFile(dir, "director", "fd00::6")))
		Expect(string(raw)).To(ContainSubstring(`deployment="fd00::6",kind="director"`))
	})
})

var _ = Describe("the example alert rules", func() {
	rules := filepath.Join("..", "..", "manifests", "prometheus", "bbr-alerts.yml")
	It("pass promtool check rules and their unit tests", func() {
		out, err := promtool("check", "rules", rules)
		Expect(err).NotTo(HaveOccurred(), out)
		out, err = promtool("test", "rules", filepath.Join("..", "..", "manifests", "prometheus", "bbr-alerts_test.yml"))
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("SUCCESS"))
	})
})

func must[T any](v T, err error) T {
	Expect(err).NotTo(HaveOccurred())
	return v
}

var _ = Describe("the failure webhook", func() {
	It("posts a Slack-compatible message on failure, retrying, and never prints the URL", func() {
		var bodies []map[string]any
		answers := []int{http.StatusBadGateway, http.StatusOK}
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			Expect(json.NewDecoder(r.Body).Decode(&body)).To(Succeed())
			Expect(r.Header.Get("Content-Type")).To(Equal("application/json"))
			bodies = append(bodies, body)
			w.WriteHeader(answers[0])
			answers = answers[1:]
		}))
		defer server.Close()
		hook := report.Webhook{URL: server.URL + "/services/T000/B000/s3cret-token", Attempts: 3, Backoff: time.Millisecond}
		failed := report.Attempt(report.KindDeployment, "cf", t0, t0.Add(75*time.Second), errors.New("1 error occurred:\nredis/0 lock: exit 1"))
		Expect(hook.Notify(context.Background(), failed)).To(Succeed())
		Expect(bodies).To(HaveLen(2), "retried after the 502")
		Expect(bodies[1]["text"]).To(Equal(":rotating_light: bbr: the backup of deployment cf FAILED after 1m15s: redis/0 lock: exit 1"))
		Expect(bodies[1]["bbr"]).To(HaveKeyWithValue("name", "cf"))

		good := report.Attempt(report.KindDeployment, "cf", t0, t0.Add(time.Minute), nil)
		Expect(hook.Notify(context.Background(), good)).To(Succeed())
		Expect(bodies).To(HaveLen(2), "success is not posted unless asked")
		hook.OnSuccess = true
		answers = []int{http.StatusOK}
		Expect(hook.Notify(context.Background(), good)).To(Succeed())
		Expect(bodies[2]["text"]).To(HavePrefix("bbr: backed up deployment cf in 1m0s"))
	})

	It("gives up after its attempts, each bounded by the timeout, naming only the host", func() {
		release := make(chan struct{})
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer server.Close()
		defer close(release)
		hook := report.Webhook{URL: server.URL + "/hook?token=s3cret-token", Attempts: 2, Timeout: 50 * time.Millisecond, Backoff: time.Millisecond}
		err := hook.Notify(context.Background(), report.Attempt(report.KindDirector, "10.0.0.6", t0, t0, errors.New("boom")))
		Expect(err).To(MatchError(ContainSubstring("notifying the webhook at " + strings.TrimPrefix(server.URL, "http://") + " failed after 2 attempts: context deadline exceeded")))
		Expect(err.Error()).NotTo(ContainSubstring("s3cret-token"))
		Expect(report.CheckWebhookURL("ftp://x/s3cret-token")).To(MatchError(Not(ContainSubstring("s3cret-token"))))
	})
})

var _ = Describe("a restore's record", func() {
	It("gets bbr_restore_* metrics of its own that pass promtool, and its own webhook line", func() {
		dir := GinkgoT().TempDir()
		good := report.RestoreAttempt(report.KindDeployment, "cf", t0, t0.Add(2*time.Minute), nil)
		good.RestoredFrom(goodBackup(GinkgoT().TempDir()))
		Expect(good.Bytes).To(BeNumerically(">", 4096))
		Expect(report.WriteRestoreMetrics(dir, good)).To(Succeed())
		Expect(report.WriteRestoreMetrics(dir, report.RestoreAttempt(report.KindDeployment, "cf", t0, t0.Add(time.Hour), errors.New("boom")))).To(Succeed())
		file := report.RestoreMetricsFile(dir, "deployment", "cf")
		Expect(filepath.Base(file)).To(Equal("bbr_restore_deployment_cf.prom"))
		raw := string(must(os.ReadFile(file)))
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(raw)
		lint, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", lint)
		Expect(string(lint)).To(BeEmpty())
		for _, want := range []string{
			`bbr_restore_last_attempt_success{deployment="cf",kind="deployment"} 0`,
			`bbr_restore_failures_total{deployment="cf",kind="deployment"} 1`,
			`bbr_restore_last_attempt_duration_seconds{deployment="cf",kind="deployment"} 3600`,
			`bbr_restore_last_success_timestamp_seconds{deployment="cf",kind="deployment"} ` + strconv.FormatFloat(float64(t0.Add(2*time.Minute).Unix()), 'g', -1, 64),
		} {
			Expect(raw).To(ContainSubstring(want))
		}
		Expect(report.MetricsFile(dir, "deployment", "cf")).NotTo(BeAnExistingFile(), "the backup's series are not touched")

		var texts []string
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			Expect(json.NewDecoder(r.Body).Decode(&body)).To(Succeed())
			texts = append(texts, body["text"].(string))
		}))
		defer server.Close()
		hook := report.Webhook{URL: server.URL, OnSuccess: true, Attempts: 1}
		Expect(hook.Notify(context.Background(), good)).To(Succeed())
		Expect(hook.Notify(context.Background(), report.RestoreAttempt(report.KindDirector, "10.0.0.6", t0, t0.Add(time.Second), errors.New("boom")))).To(Succeed())
		Expect(texts).To(Equal([]string{"bbr: restored deployment cf in 2m0s from " + good.Backup,
			":rotating_light: bbr: the restore of director 10.0.0.6 FAILED after 1s: boom"}))
	})
})
