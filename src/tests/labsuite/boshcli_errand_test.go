package labsuite_test

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/bbr-release/bbr/src/lab/model"
)

// tarNames lists the entries of a .tgz.
func tarNames(path string) []string {
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	gz, err := gzip.NewReader(f)
	Expect(err).NotTo(HaveOccurred())
	tr := tar.NewReader(gz)
	var names []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
	}
	return names
}

var _ = Describe("the errands through the real bosh CLI", Ordered, func() {
	var (
		root, work      string
		jumpbox, worker model.Instance
		director        map[string]any
	)

	bosh := func(args ...string) result {
		return runIn(work, bbrEnv("jumpbox"), boshBin, append([]string{"-n"}, args...)...)
	}
	BeforeAll(func() {
		if boshBin == "" {
			Skip("BBR_TEST_BIN is not set: scripts/test builds the bosh CLI there")
		}
		var err error
		root, err = filepath.Abs(filepath.Join("..", "..", ".."))
		Expect(err).NotTo(HaveOccurred())
		labUp("basic", writeSmallDeployment(), writeWaitingDeployment(),
			writeJumpboxDeployment(root, jumpboxVars(map[string]any{"deployments": []string{"small"}, "restore_deployment": "small"})))
		jumpbox, worker = instance("jumpbox", "jumpbox", 0), instance("small", "worker", 0)
		director = renderedDirector(jumpbox)
	})

	BeforeEach(func() {
		work = GinkgoT().TempDir()
		awaitNextSecond() // backups are named to the second
		Expect(os.WriteFile(filepath.Join(worker.Root, "store", "data"), []byte("small data\n"), 0o644)).To(Succeed())
	})

	AfterEach(func() {
		Expect(labUsers()).To(BeEmpty(), "every SSH user bbr asked for is removed")
		Expect(stagingLeft("small")).To(BeEmpty())
		Expect(stagingLeft("waiting")).To(BeEmpty())
	})

	It("lists the colocated errand jobs, and only those", func() {
		r := bosh("-d", "jumpbox", "errands").expectSuccess()
		Expect(r.out).To(MatchRegexp(`(?m)^backup\s*$`))
		Expect(r.out).To(MatchRegexp(`(?m)^restore\s*$`))
		Expect(r.out).NotTo(ContainSubstring("user_add"))
	})

	It("runs the backup errand: exit 0, its output in the task result, its logs downloaded", func() {
		r := bosh("-d", "jumpbox", "run-errand", "backup", "--download-logs", "--logs-dir", work).expectSuccess()
		// Without a terminal the CLI prints the table's values, one a line.
		Expect(r.out).To(MatchRegexp(`(?m)^jumpbox/`+jumpbox.ID+`\s*\n0\s*$`), "the instance and its exit code")
		Expect(r.out).To(MatchRegexp(`small\s+ok\s+`), "the errand's summary, from its stdout")
		Expect(r.out).To(MatchRegexp(`Running errand: jumpbox/`+jumpbox.ID+` \(0\)`), "the task's events")
		logs, _ := filepath.Glob(filepath.Join(work, "backup-*.tgz"))
		Expect(logs).To(HaveLen(1))
		Expect(tarNames(logs[0])).To(ContainElement("./backup.log"))
	})

	It("exits non-zero with the errand's exit code and output when the errand fails", func() {
		Expect(os.Remove(filepath.Join(worker.Root, "store", "data"))).To(Succeed())
		r := bosh("-d", "jumpbox", "run-errand", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.out).To(MatchRegexp(`(?m)^jumpbox/` + jumpbox.ID + `\s*\n1\s*$`))
		Expect(r.out).To(MatchRegexp(`small\s+FAILED\s+`))
		Expect(r.err + r.out).To(ContainSubstring("Errand 'backup' completed with error (exit code 1)"))
	})

	It("honours --instance, and refuses a selection nothing matches", func() {
		bosh("-d", "jumpbox", "run-errand", "backup", "--instance", "jumpbox/0").expectSuccess()
		awaitNextSecond() // backups are named to the second
		bosh("-d", "jumpbox", "run-errand", "backup", "--instance", "jumpbox/"+jumpbox.ID).expectSuccess()
		r := bosh("-d", "jumpbox", "run-errand", "backup", "--instance", "jumpbox/7")
		Expect(r.code).To(Equal(1))
		Expect(r.err + r.out).To(ContainSubstring("No instances match selection 'jumpbox/7' with errand 'backup'"))
		r = bosh("-d", "jumpbox", "run-errand", "nope")
		Expect(r.code).To(Equal(1))
		Expect(r.err + r.out).To(ContainSubstring("Errand 'nope' doesn't exist"))
	})

	It("is run by the reference Concourse task, which fails when the errand fails", func() {
		params := labParams("jumpbox")
		r, _ := runTask("bosh-run-errand", nil, params)
		Expect(r.code).To(Equal(0), r.out)
		Expect(r.out).To(MatchRegexp(`small\s+ok\s+`))
		Expect(os.Remove(filepath.Join(worker.Root, "store", "data"))).To(Succeed())
		awaitNextSecond()
		r, _ = runTask("bosh-run-errand", nil, params)
		Expect(r.code).To(Equal(1))
	})

	It("stops a backup on cancel-task: the errand gets SIGTERM, unlocks and cleans up, and the CLI says it was cancelled", func() {
		renderJob(root, jumpbox, "jumpbox", "backup", map[string]any{"director": director, "deployments": []any{"waiting"}})
		DeferCleanup(func() {
			renderJob(root, jumpbox, "jumpbox", "backup", map[string]any{"director": director, "deployments": []any{"small"}})
		})
		locks, unlocks := waitingLines("locked"), waitingLines("unlocked")
		cmd := exec.Command(boshBin, "-n", "-d", "jumpbox", "run-errand", "backup")
		cmd.Env = append(os.Environ(), bbrEnv("jumpbox")...)
		session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(session.Kill)
		Eventually(session.Out, "30s").Should(gbytes.Say(`Task (\d+)`))
		id := regexp.MustCompile(`Task (\d+)`).FindStringSubmatch(string(session.Out.Contents()))[1]
		Eventually(func() int { return waitingLines("locked") }, "60s", "100ms").Should(Equal(locks + 1))

		bosh("cancel-task", id).expectSuccess()
		Eventually(session, "60s").Should(gexec.Exit(1))
		Expect(string(session.Out.Contents()) + string(session.Err.Contents())).To(ContainSubstring("Expected task '" + id + "' to succeed but state is 'cancelled'"))
		Expect(waitingLines("unlocked")).To(Equal(unlocks+1), "unlocked before the errand exited")
		r := bosh("task", id)
		Expect(r.err + r.out).To(ContainSubstring("cancelled"))
		raw, err := os.ReadFile(filepath.Join(jumpbox.Root, "store", "bbr", "artifacts", ".reports", "last-run.json"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).To(ContainSubstring(`"ok": false`))
	})
})
