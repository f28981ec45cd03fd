package labsuite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/bucket"
	"github.com/bbr-release/bbr/src/lab/objectstore"
)

// startObjectStore starts SeaweedFS for the current container, with a
// bucket "backups", or skips when scripts/test has not built it.
func startObjectStore() *objectstore.Server {
	bin := os.Getenv("BBR_TEST_BIN")
	if bin == "" {
		Skip("BBR_TEST_BIN is not set: scripts/test builds SeaweedFS there")
	}
	s, err := objectstore.Start(filepath.Join(bin, "weed"), GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(s.Stop)
	Expect(s.CreateBucket("backups")).To(Succeed())
	return s
}

// s3Env is what an operator exports for bbr to reach the bucket.
func s3Env(s *objectstore.Server) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint, "AWS_REGION=us-east-1", "BBR_S3_ADDRESSING=path"}
}

// objects lists the keys under prefix in the bucket "backups".
func objects(s *objectstore.Server, prefix string) []string {
	c, err := s.Client()
	Expect(err).NotTo(HaveOccurred())
	var keys []string
	for o := range c.ListObjectsIter(context.Background(), "backups", minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		Expect(o.Err).NotTo(HaveOccurred())
		keys = append(keys, strings.TrimPrefix(o.Key, prefix))
	}
	sort.Strings(keys)
	return keys
}

// unfinishedUploads lists the bucket's multipart uploads that were
// neither completed nor aborted (each is billed until it is).
func unfinishedUploads(s *objectstore.Server) []string {
	c, err := s.Client()
	Expect(err).NotTo(HaveOccurred())
	var keys []string
	for u := range c.ListIncompleteUploads(context.Background(), "backups", "", true) {
		Expect(u.Err).NotTo(HaveOccurred())
		keys = append(keys, u.Key)
	}
	return keys
}

// backupsIn lists the backup names (their "folders") under prefix.
func backupsIn(s *objectstore.Server, prefix string) []string {
	seen := map[string]bool{}
	for _, k := range objects(s, prefix) {
		seen[strings.SplitN(k, "/", 2)[0]] = true
	}
	var out []string
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

var _ = Describe("backups in an S3-compatible bucket (SeaweedFS)", Ordered, func() {
	var (
		s3      *objectstore.Server
		workDir string
	)

	BeforeAll(func() {
		s3 = startObjectStore()
		labUp("basic", "sample", writeFaultDeployment("faulty", 1, "alpha"))
	})

	BeforeEach(func() {
		workDir = GinkgoT().TempDir()
		resetFaults("faulty")
	})

	AfterEach(func() {
		Expect(labUsers()).To(BeEmpty(), "every SSH user bbr asked for is removed")
		Expect(stagingLeft("sample")).To(BeEmpty())
		Expect(stagingLeft("faulty")).To(BeEmpty())
	})

	bbrS3 := func(deployment string, args ...string) result {
		return runIn(workDir, append(bbrEnv(deployment), s3Env(s3)...), bbrBin, append([]string{"deployment"}, args...)...)
	}
	worker := func() modelInstance { return instance("faulty", "worker", 0) }

	It("backs up to the bucket using no local disk, and restores from it with every byte back", func() {
		redis0 := instance("sample", "redis", 0)
		for k := 0; k < 50; k++ {
			redis(redis0, fmt.Sprintf("SET bucket-key-%d value-%d", k, k))
		}
		psql(instance("sample", "postgres", 0), "CREATE TABLE IF NOT EXISTS bucket_t (v text); INSERT INTO bucket_t VALUES ('from the bucket')")

		r := bbrS3("sample", "backup", "--artifact-path", "s3://backups/cli").expectSuccess()
		Expect(r.out).To(ContainSubstring("Backup created of sample"))
		Expect(os.ReadDir(workDir)).To(BeEmpty(), "a bucket backup writes nothing on the jumpbox")
		names := backupsIn(s3, "cli/")
		Expect(names).To(HaveLen(1))
		Expect(objects(s3, "cli/"+names[0]+"/")).To(Equal([]string{"metadata", "postgres-0-postgres.tar", "redis-0-redis.tar", "redis-1-redis.tar"}))
		Expect(unfinishedUploads(s3)).To(BeEmpty())

		redis(redis0, "FLUSHALL")
		psql(instance("sample", "postgres", 0), "DROP TABLE bucket_t")
		r = bbrS3("sample", "restore", "--artifact-path", "s3://backups/cli/"+names[0]).expectSuccess()
		Expect(r.out).To(ContainSubstring("Completed restore of sample"))
		Expect(redis(redis0, "DBSIZE")).To(Equal("50"))
		Expect(redis(redis0, "GET bucket-key-42")).To(Equal("value-42"))
		Expect(psql(instance("sample", "postgres", 0), "SELECT v FROM bucket_t")).To(Equal("from the bucket"))
		Expect(os.ReadDir(workDir)).To(BeEmpty())
	})

	It("writes backups that a plain S3 client downloads and bbr restores from the local directory", func() {
		r := bbrS3("faulty", "backup", "--artifact-path", "s3://backups/sync").expectSuccess()
		_ = r
		names := backupsIn(s3, "sync/")
		Expect(names).To(HaveLen(1))
		local := filepath.Join(GinkgoT().TempDir(), names[0])
		aws := exec.Command("/usr/bin/aws", "--endpoint-url", s3.Endpoint, "s3", "sync", "s3://backups/sync/"+names[0], local)
		aws.Env = append(os.Environ(), s3Env(s3)...)
		out, err := aws.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		art, err := artifact.Open(local)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), art)).To(Succeed())

		Expect(os.Remove(filepath.Join(worker().Root, "store", "restored-alpha"))).To(Or(Succeed(), MatchError(os.ErrNotExist)))
		runIn(workDir, bbrEnv("faulty"), bbrBin, "deployment", "restore", "--artifact-path", local).expectSuccess()
		Expect(os.ReadFile(filepath.Join(worker().Root, "store", "restored-alpha"))).To(Equal([]byte("alpha data\n")))
	})

	It("refuses a tampered object before any lock, removing what it staged", func() {
		bbrS3("faulty", "backup", "--artifact-path", "s3://backups/tamper").expectSuccess()
		name := backupsIn(s3, "tamper/")[0]
		key := "tamper/" + name + "/worker-0-alpha.tar"
		c, err := s3.Client()
		Expect(err).NotTo(HaveOccurred())
		obj, err := c.GetObject(context.Background(), "backups", key, minio.GetObjectOptions{})
		Expect(err).NotTo(HaveOccurred())
		var raw bytes.Buffer
		_, err = raw.ReadFrom(obj)
		Expect(err).NotTo(HaveOccurred())
		tampered := bytes.Replace(raw.Bytes(), []byte("alpha data"), []byte("evil! data"), 1)
		Expect(tampered).NotTo(Equal(raw.Bytes()))
		_, err = c.PutObject(context.Background(), "backups", key, bytes.NewReader(tampered), int64(len(tampered)), minio.PutObjectOptions{})
		Expect(err).NotTo(HaveOccurred())
		resetFaults("faulty")

		r := bbrS3("faulty", "restore", "--artifact-path", "s3://backups/tamper/"+name)
		Expect(r.code).NotTo(Equal(0))
		Expect(r.err).To(ContainSubstring("checksums don't match for worker-0-alpha.tar"))
		Expect(scriptLog(worker(), "alpha")).NotTo(MatchRegexp(`(?m)^(pre-restore-lock|restore|post-restore-unlock) `), "nothing was locked or restored")
		Expect(stagingLeft("faulty")).To(BeEmpty(), "what was staged is removed")
	})

	It("names wrong credentials, a missing bucket, and a backup that does not exist or failed, touching nothing", func() {
		wrong := runIn(workDir, append(append(bbrEnv("faulty"), s3Env(s3)...), "AWS_SECRET_ACCESS_KEY=wrong"), bbrBin,
			"deployment", "backup", "--artifact-path", "s3://backups/bad")
		Expect(wrong.code).To(Equal(1))
		Expect(wrong.err).To(ContainSubstring("the S3 credentials were refused: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"))
		Expect(wrong.out + wrong.err).NotTo(ContainSubstring(s3.SecretKey))
		logs, _ := filepath.Glob(filepath.Join(workDir, "bbr-*.err.log"))
		Expect(logs).NotTo(BeEmpty())
		for _, l := range logs {
			Expect(os.ReadFile(l)).NotTo(ContainSubstring(s3.SecretKey), "the error file holds no secret")
		}

		missing := bbrS3("faulty", "backup", "--artifact-path", "s3://no-such-bucket/x")
		Expect(missing.code).To(Equal(1))
		Expect(missing.err).To(ContainSubstring("s3://no-such-bucket/x: the bucket does not exist: create it, or fix the bucket name"))
		Expect(scriptLog(worker(), "alpha")).To(BeEmpty(), "nothing was locked")

		absent := bbrS3("faulty", "restore", "--artifact-path", "s3://backups/bad/faulty_20200101T000000Z")
		Expect(absent.code).To(Equal(1))
		Expect(absent.err).To(ContainSubstring("there is no backup s3://backups/bad/faulty_20200101T000000Z"))

		setFault(worker(), "alpha-backup", "x")
		failed := bbrS3("faulty", "backup", "--artifact-path", "s3://backups/bad")
		Expect(failed.code).NotTo(Equal(0))
		name := backupsIn(s3, "bad/")[0]
		Expect(objects(s3, "bad/"+name+"/")).To(Equal([]string{"FAILED"}))
		resetFaults("faulty")
		refused := bbrS3("faulty", "restore", "--artifact-path", "s3://backups/bad/"+name)
		Expect(refused.code).To(Equal(1))
		Expect(refused.err).To(ContainSubstring("is a failed backup and cannot be restored"))
		Expect(scriptLog(worker(), "alpha")).To(BeEmpty())
	})

	It("validates and lists backups in the bucket and in a directory, touching no platform", func() {
		bbrS3("faulty", "backup", "--artifact-path", "s3://backups/inspect").expectSuccess()
		awaitNextSecond()
		setFault(worker(), "alpha-backup", "x")
		Expect(bbrS3("faulty", "backup", "--artifact-path", "s3://backups/inspect").err).To(ContainSubstring("alpha backup: injected failure"))
		resetFaults("faulty")
		local := GinkgoT().TempDir()
		runIn(workDir, bbrEnv("faulty"), bbrBin, "deployment", "backup", "--artifact-path", local).expectSuccess()

		inspect := func(args ...string) result { return runIn(workDir, s3Env(s3), bbrBin, args...) }
		var listedBackups []struct{ Name, Status, Deployment string }
		r := inspect("list", "--artifact-path", "s3://backups/inspect", "--json").expectSuccess()
		Expect(json.Unmarshal([]byte(r.out), &listedBackups)).To(Succeed())
		Expect(listedBackups).To(HaveLen(2))
		Expect(listedBackups[0].Status).To(Equal("failed"), "newest first")
		Expect(listedBackups[1]).To(And(HaveField("Status", "good"), HaveField("Deployment", "faulty")))
		good := listedBackups[1].Name
		r = inspect("list", "--artifact-path", local).expectSuccess()
		Expect(r.out).To(MatchRegexp(`faulty_\d{8}T\d{6}Z\s+faulty\s+\S+\s+good\s+`))

		r = inspect("validate", "--artifact-path", "s3://backups/inspect/"+good).expectSuccess()
		Expect(r.out).To(ContainSubstring("Verdict: GOOD"))
		Expect(r.out).To(MatchRegexp(`worker-0-alpha.tar\s+\S+\s+1 file\s+ok`))
		localBackup, _ := filepath.Glob(filepath.Join(local, "faulty_*"))
		Expect(localBackup).To(HaveLen(1))
		inspect("validate", "--artifact-path", localBackup[0]).expectSuccess()

		Expect(os.WriteFile(filepath.Join(localBackup[0], "worker-0-alpha.tar"), []byte("not a tar at all, 512 bytes or not"), 0o600)).To(Succeed())
		r = inspect("validate", "--artifact-path", localBackup[0])
		Expect(r.code).To(Equal(1))
		Expect(r.out).To(MatchRegexp(`worker-0-alpha.tar\s+.*BAD: worker-0-alpha.tar: reading tar stream`))
		Expect(r.out).To(ContainSubstring("Verdict: BAD (1 problems)"))
		r = inspect("validate", "--artifact-path", "s3://backups/inspect/"+listedBackups[0].Name)
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("is a failed backup and cannot be restored"))
		Expect(scriptLog(worker(), "alpha")).NotTo(ContainSubstring("restore"), "validate runs no script")
	})

	It("aborts its uploads and marks the backup failed when it is stopped mid-upload", func() {
		setFault(worker(), "alpha-huge", "x")
		session, _ := bbrStartIn(workDir, append(bbrEnv("faulty"), s3Env(s3)...),
			"deployment", "--progress-interval", "1s", "backup", "--artifact-path", "s3://backups/stopped")
		Eventually(session.Out, time.Minute).Should(gbytes.Say(`INFO - Copying: \d+(\.\d)?[KMG] so far`))
		session.Signal(syscall.SIGTERM)
		Eventually(session, 2*time.Minute).Should(gexec.Exit())
		Expect(session.ExitCode()).NotTo(Equal(0))
		Expect(scriptLog(worker(), "alpha")).To(ContainSubstring("post-backup-unlock after_success=true"))
		name := backupsIn(s3, "stopped/")[0]
		Expect(objects(s3, "stopped/"+name+"/")).To(ContainElement("FAILED"))
		Expect(objects(s3, "stopped/"+name+"/")).NotTo(ContainElement("metadata"))
		Expect(unfinishedUploads(s3)).To(BeEmpty(), "the multipart upload was aborted")
	})

	It("fails, unlocked, with no good-looking backup, when the server dies mid-upload; the next backup's retention aborts what it left", func() {
		setFault(worker(), "alpha-huge", "x")
		session, _ := bbrStartIn(workDir, append(bbrEnv("faulty"), s3Env(s3)...),
			"deployment", "--progress-interval", "1s", "backup", "--artifact-path", "s3://backups/killed")
		Eventually(session.Out, time.Minute).Should(gbytes.Say(`INFO - Copying: \d+(\.\d)?[KMG] so far`))
		s3.Kill()
		Eventually(session, 3*time.Minute).Should(gexec.Exit())
		Expect(session.ExitCode()).NotTo(Equal(0))
		Expect(string(session.Err.Contents())).To(ContainSubstring("Error streaming backup from remote instance"))
		Expect(scriptLog(worker(), "alpha")).To(ContainSubstring("post-backup-unlock after_success=true"))

		Expect(s3.Restart()).To(Succeed())
		dest, err := bucket.New(context.Background(), bucket.Config{Bucket: "backups", Prefix: "killed", Endpoint: s3.Endpoint,
			Addressing: "path", AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey})
		Expect(err).NotTo(HaveOccurred())
		_, err = artifact.Newest(context.Background(), dest, "faulty")
		Expect(err).To(MatchError(ContainSubstring("no good backup of faulty")))
		GinkgoWriter.Printf("left by the killed run: uploads %v, objects %v\n", unfinishedUploads(s3), objects(s3, "killed/"))

		resetFaults("faulty")
		// The killed run's backup is seconds old: only a short grace lets
		// retention take it for interrupted rather than still running.
		r := bbrS3("faulty", "backup", "--artifact-path", "s3://backups/killed", "--keep-last", "1", "--in-progress-grace", "1s").expectSuccess()
		Expect(r.out).To(ContainSubstring("Retention: removed faulty_"))
		all, err := dest.List(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		Expect(all[0].State).To(Equal(artifact.Good))
		Expect(unfinishedUploads(s3)).To(BeEmpty())
	})

	It("runs the reference Concourse tasks as Concourse would: backup, restore from its output, cleanup after a failure, all deployments to the bucket", func() {
		r, work := runTask("bbr-backup-deployment", nil, labParams("faulty"))
		Expect(r.code).To(Equal(0), r.out)
		backups, _ := filepath.Glob(filepath.Join(work, "backup", "faulty_*"))
		Expect(backups).To(HaveLen(1), "the backup output holds the backup")
		Expect(filepath.Join(work, "backup", "report.json")).To(BeARegularFile())

		Expect(os.Remove(filepath.Join(worker().Root, "store", "restored-alpha"))).To(Or(Succeed(), MatchError(os.ErrNotExist)))
		r, _ = runTask("bbr-restore-deployment", map[string]string{"backup": filepath.Join(work, "backup")}, labParams("faulty"))
		Expect(r.code).To(Equal(0), r.out)
		Expect(os.ReadFile(filepath.Join(worker().Root, "store", "restored-alpha"))).To(Equal([]byte("alpha data\n")))

		setFault(worker(), "alpha-backup", "x")
		r, _ = runTask("bbr-backup-deployment", nil, labParams("faulty"))
		Expect(r.code).NotTo(Equal(0), "a failed backup fails the task, so on_failure runs")
		resetFaults("faulty")
		r, _ = runTask("bbr-cleanup", nil, labParams("faulty"))
		Expect(r.code).To(Equal(0), r.out)
		Expect(r.out).To(ContainSubstring("'faulty' cleaned up"))

		params := labParams("")
		delete(params, "BOSH_DEPLOYMENT")
		for _, kv := range s3Env(s3) {
			if k, v, _ := strings.Cut(kv, "="); k != "BBR_S3_ADDRESSING" {
				params[k] = v
			}
		}
		params["ARTIFACT_PATH"] = "s3://backups/concourse"
		params["BBR_FLAGS"] = "--s3-addressing path --compress"
		r, work = runTask("bbr-backup-all-deployments", nil, params)
		Expect(r.code).To(Equal(0), r.out)
		Expect(backupsIn(s3, "concourse/")).To(ConsistOf(HavePrefix("faulty_"), HavePrefix("sample_")))
		Expect(string(must(os.ReadFile(filepath.Join(work, "backup", "report.json"))))).To(And(ContainSubstring(`"name": "faulty"`), ContainSubstring(`"name": "sample"`)))
		Expect(r.out).NotTo(ContainSubstring(s3.SecretKey))
	})

	It("restores an encrypted backup through the reference task, the age identity on no disk while bbr runs or after", func() {
		keys := GinkgoT().TempDir()
		sh("age-keygen -o " + filepath.Join(keys, "id") + " 2>/dev/null")
		recipient := sh("age-keygen -y " + filepath.Join(keys, "id"))
		identity := string(must(os.ReadFile(filepath.Join(keys, "id"))))
		params := labParams("faulty")
		params["BBR_FLAGS"] = "--compress --encrypt-to " + recipient
		r, work := runTask("bbr-backup-deployment", nil, params)
		Expect(r.code).To(Equal(0), r.out)
		stored, _ := filepath.Glob(filepath.Join(work, "backup", "faulty_*", "*.tar.zst.age"))
		Expect(stored).NotTo(BeEmpty(), "the backup is encrypted")

		Expect(os.Remove(filepath.Join(worker().Root, "store", "restored-alpha"))).To(Or(Succeed(), MatchError(os.ErrNotExist)))
		params = labParams("faulty")
		params["BBR_IDENTITY"] = identity
		r, restoreWork := runTask("bbr-restore-deployment", map[string]string{"backup": filepath.Join(work, "backup")}, params)
		Expect(r.code).To(Equal(0), r.out)
		Expect(os.ReadFile(filepath.Join(worker().Root, "store", "restored-alpha"))).To(Equal([]byte("alpha data\n")))
		Expect(os.ReadDir(taskTmp(restoreWork))).To(BeEmpty(), "the identity's file is gone")
		secret := sh("grep '^AGE-SECRET-KEY-' " + filepath.Join(keys, "id"))
		Expect(sh("grep -rlF -- "+secret+" "+filepath.Dir(restoreWork)+" || true")).To(BeEmpty(), "no file holds the identity")
		Expect(r.out).NotTo(ContainSubstring(secret))
	})

	It("draws progress bars on a terminal, with upstream's log lines above them and none lost", func() {
		setFault(worker(), "alpha-large", "x")
		defer resetFaults("faulty")
		cmd := exec.Command(bbrBin, "deployment", "backup", "--artifact-path", GinkgoT().TempDir())
		cmd.Env = append(append(os.Environ(), bbrEnv("faulty")...), "TERM=xterm")
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
		Expect(err).NotTo(HaveOccurred())
		var screen bytes.Buffer
		copied := make(chan struct{})
		go func() {
			_, _ = io.Copy(&screen, tty) // ends with EIO once bbr exits
			close(copied)
		}()
		Expect(cmd.Wait()).To(Succeed())
		<-copied
		out := screen.String()
		Expect(out).To(ContainSubstring("Backing up, 1 jobs"))
		Expect(out).To(MatchRegexp(`worker/0 alpha\s+\S+\s+\d+(\.\d)? MiB\s+\d+(\.\d)? MiB/s`), "a spinner, the bytes and the rate")
		Expect(out).To(ContainSubstring("\x1b["), "drawn with cursor movement")
		for _, line := range []string{"Starting backup of faulty", "Copying backup for job alpha on worker/", "Finished validity checks", "Backup created of faulty"} {
			Expect(out).To(ContainSubstring(line), "log lines are printed above the bars, none lost")
		}
		Expect(out).NotTo(ContainSubstring("INFO - Copying: "), "no periodic lines under the bars")
	})

	It("reports every backup as JSON and Prometheus metrics, and posts the failure to a webhook", func() {
		var posts []string
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			posts = append(posts, string(raw))
		}))
		defer hook.Close()
		metrics, reportFile := GinkgoT().TempDir(), filepath.Join(GinkgoT().TempDir(), "run.json")
		env := append(bbrEnv("faulty"), append(s3Env(s3), "BBR_WEBHOOK_URL="+hook.URL+"/services/s3cret")...)
		backup := func() result {
			return runIn(workDir, env, bbrBin, "deployment", "backup", "--artifact-path", "s3://backups/reported",
				"--report", reportFile, "--metrics-dir", metrics)
		}
		backup().expectSuccess()
		var run struct {
			OK          bool
			Deployments []struct {
				Name, Kind, Backup, Destination string
				OK                              bool
				Bytes                           int64
				LockWindowSeconds               float64 `json:"lock_window_seconds"`
				Files                           []struct {
					Name, Instance, Job string
					Seconds             float64 `json:"copy_seconds"`
				}
			}
		}
		raw, err := os.ReadFile(reportFile)
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(raw, &run)).To(Succeed())
		Expect(run.OK).To(BeTrue())
		Expect(run.Deployments).To(HaveLen(1))
		d := run.Deployments[0]
		Expect(d.Backup).To(HavePrefix("s3://backups/reported/faulty_"))
		Expect(d.LockWindowSeconds).To(BeNumerically(">", 0))
		Expect(d.Files).To(ConsistOf(And(HaveField("Name", "worker-0-alpha.tar"), HaveField("Instance", "worker/0"), HaveField("Job", "alpha"),
			HaveField("Seconds", BeNumerically(">", 0)))))
		Expect(posts).To(BeEmpty(), "a good backup is not posted")

		awaitNextSecond()
		setFault(worker(), "alpha-backup", "x")
		r := backup()
		Expect(r.code).NotTo(Equal(0))
		resetFaults("faulty")
		Expect(posts).To(HaveLen(1))
		Expect(posts[0]).To(ContainSubstring("the backup of deployment faulty FAILED"))
		Expect(r.out + r.err).NotTo(ContainSubstring("s3cret"))
		file := filepath.Join(metrics, "bbr_deployment_faulty.prom")
		lint := exec.Command("promtool", "check", "metrics")
		lint.Stdin = bytes.NewReader(must(os.ReadFile(file)))
		out, err := lint.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		prom := string(must(os.ReadFile(file)))
		Expect(prom).To(ContainSubstring(`bbr_backup_last_attempt_success{deployment="faulty",kind="deployment"} 0`))
		Expect(prom).To(ContainSubstring(`bbr_backup_failures_total{deployment="faulty",kind="deployment"} 1`))
		Expect(prom).To(MatchRegexp(`bbr_backup_last_success_timestamp_seconds\{deployment="faulty",kind="deployment"\} \d`), "kept from the good backup")
	})

	It("streams backups compressed and encrypted to a public key, which only the identity restores, and age and zstd read", func() {
		keys := GinkgoT().TempDir()
		identity := filepath.Join(keys, "backup.key")
		sh("age-keygen -o " + identity + " 2>/dev/null")
		recipient := sh("age-keygen -y " + identity)
		redis0, pg := instance("sample", "redis", 0), instance("sample", "postgres", 0)
		redis(redis0, "SET enc-secret hunter2-in-redis")
		psql(pg, "CREATE TABLE IF NOT EXISTS enc_t (v text); INSERT INTO enc_t VALUES ('hunter2-in-postgres')")

		bbrS3("sample", "backup", "--artifact-path", "s3://backups/enc", "--with-manifest", "--compress", "--encrypt-to", recipient).expectSuccess()
		Expect(os.ReadDir(workDir)).To(BeEmpty(), "nothing plain on the jumpbox either")
		name := backupsIn(s3, "enc/")[0]
		Expect(objects(s3, "enc/"+name+"/")).To(Equal([]string{"manifest.yml.zst.age", "metadata",
			"postgres-0-postgres.tar.zst.age", "redis-0-redis.tar.zst.age", "redis-1-redis.tar.zst.age"}))
		local := filepath.Join(GinkgoT().TempDir(), name)
		aws := exec.Command("/usr/bin/aws", "--endpoint-url", s3.Endpoint, "s3", "sync", "s3://backups/enc/"+name, local)
		aws.Env = append(os.Environ(), s3Env(s3)...)
		out, err := aws.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		Expect(sh("cat "+local+"/*.age | grep -c hunter2 || true")).To(Equal("0"), "no plaintext in the bucket")
		raw, err := os.ReadFile(filepath.Join(local, "metadata"))
		Expect(err).NotTo(HaveOccurred())
		meta, err := artifact.ParseMetadata(raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(meta.Recipients()).To(Equal([]string{recipient}))
		plain := exec.Command("sh", "-c", `age -d -i "$1" "$2" | zstd -dc`, "sh", identity, filepath.Join(local, "postgres-0-postgres.tar.zst.age"))
		tarball, err := plain.Output()
		Expect(err).NotTo(HaveOccurred())
		sums, err := artifact.SumTar(bytes.NewReader(tarball))
		Expect(err).NotTo(HaveOccurred())
		Expect(sums).To(Equal(meta.Files()["postgres-0-postgres.tar"]), "the CLIs give back the tar upstream would have written")

		inspect := func(args ...string) result { return runIn(workDir, s3Env(s3), bbrBin, args...) }
		Expect(inspect("list", "--artifact-path", "s3://backups/enc").expectSuccess().out).To(MatchRegexp(name + `\s+sample\s+\S+\s+good\s+\S+\s+zstd\+age`))
		r := inspect("validate", "--artifact-path", "s3://backups/enc/"+name)
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("the backup is encrypted (to " + recipient + "): give --identity-file with an identity that decrypts it, or --stored-only"))
		Expect(inspect("validate", "--artifact-path", "s3://backups/enc/"+name, "--stored-only").expectSuccess().out).To(ContainSubstring("Verdict: GOOD as stored"))
		r = inspect("validate", "--artifact-path", "s3://backups/enc/"+name, "--identity-file", identity).expectSuccess()
		Expect(r.out).To(And(ContainSubstring("Transforms:    zstd+age"), ContainSubstring("Verdict: GOOD (every file")))

		wrong := filepath.Join(keys, "wrong.key")
		sh("age-keygen -o " + wrong + " 2>/dev/null")
		redis(redis0, "FLUSHALL")
		before := jobLog(redis0, "redis")
		for _, args := range [][]string{nil, {"--identity-file", wrong}} {
			r = bbrS3("sample", append([]string{"restore", "--artifact-path", "s3://backups/enc/" + name}, args...)...)
			Expect(r.code).To(Equal(1))
			Expect(r.out + r.err).To(Or(ContainSubstring("give --identity-file"), ContainSubstring("none of the identities given decrypts it: it was encrypted to "+recipient)))
			Expect(r.out + r.err).NotTo(ContainSubstring("AGE-SECRET-KEY"))
		}
		Expect(jobLog(redis0, "redis")).To(Equal(before), "refused before anything was locked")
		psql(pg, "DROP TABLE enc_t")
		bbrS3("sample", "restore", "--artifact-path", "s3://backups/enc/"+name, "--identity-file", identity).expectSuccess()
		Expect(redis(redis0, "GET enc-secret")).To(Equal("hunter2-in-redis"))
		Expect(psql(pg, "SELECT v FROM enc_t")).To(Equal("hunter2-in-postgres"))

		exported := GinkgoT().TempDir()
		inspect("export", "--artifact-path", local, "--identity-file", identity, "--to", exported).expectSuccess()
		art, err := artifact.Open(filepath.Join(exported, name))
		Expect(err).NotTo(HaveOccurred())
		Expect(art.Metadata().Encodings).To(BeEmpty(), "upstream's format")
		Expect(artifact.Verify(context.Background(), art)).To(Succeed())
		Expect(os.ReadFile(filepath.Join(exported, name, "manifest.yml"))).To(ContainSubstring("name: sample"))
	})

})

// bbrStartIn starts bbr in dir with env, killed at the end of the spec if
// it still runs.
func bbrStartIn(dir string, env []string, args ...string) (*gexec.Session, string) {
	cmd := exec.Command(bbrBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	DeferCleanup(session.Kill)
	return session, cmd.Dir
}
