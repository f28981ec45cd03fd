package labsuite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/bbr-release/bbr/src/artifact"
)

// The hardening review (issue 17), tried on a real instance.
var _ = Describe("Hardening", Ordered, func() {
	var worker func() modelInstance

	BeforeAll(func() {
		labUp("basic", writeFaultDeployment("hard", 1, "alpha"))
		worker = func() modelInstance { return instance("hard", "worker", 0) }
	})

	BeforeEach(func() { resetFaults("hard") })

	AfterEach(func() {
		Expect(stagingLeft("hard")).To(BeEmpty())
		Expect(labUsers()).To(BeEmpty())
	})

	Describe("a job directory whose name is a shell command", func() {
		var marker, evilDir string

		BeforeEach(func() {
			// The name holds no '/', so it walks up to / with cd and
			// touches a marker in /tmp, which the instance shares.
			marker = fmt.Sprintf("bbr-pwned-%d", time.Now().UnixNano())
			evil := "evil;cd ..;cd ..;cd ..;cd ..;cd ..;cd tmp;touch " + marker + ";x"
			evilDir = filepath.Join(worker().Root, "jobs", evil)
			script := filepath.Join(evilDir, "bin", "bbr", "backup")
			Expect(os.MkdirAll(filepath.Dir(script), 0o755)).To(Succeed())
			Expect(os.WriteFile(script, []byte("#!/bin/bash\necho x > \"${BBR_ARTIFACT_DIRECTORY}x\"\n"), 0o755)).To(Succeed())
			DeferCleanup(func() {
				Expect(os.RemoveAll(evilDir)).To(Succeed())
				os.Remove(filepath.Join("/tmp", marker))
			})
		})

		It("is refused before anything is locked, naming the value, and runs nothing", func() {
			dir := GinkgoT().TempDir()
			r := bbr(dir, "hard", "deployment", "backup")
			Expect(r.code).To(Equal(1), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
			Expect(r.err).To(ContainSubstring(`refusing job name "evil;cd ..;`))
			Expect(filepath.Join("/tmp", marker)).NotTo(BeAnExistingFile(), "the name never reached a shell")
			Expect(scriptLog(worker(), "alpha")).NotTo(ContainSubstring("pre-backup-lock"))
			good, _ := artifactsIn(dir)
			Expect(good).To(BeEmpty())
		})
	})

	It("backup-cleanup during a running backup refuses, naming the run, and the backup completes; a dead run's leftovers are still cleaned", func() {
		setFault(worker(), "alpha-backup-hold", "x")
		DeferCleanup(setFault, worker(), "alpha-backup-hold", "")
		session, firstDir := bbrStart("hard", "deployment", "backup")
		Eventually(filepath.Join(worker().Root, "store", "faults", "alpha-backup-held")).Should(BeAnExistingFile())

		r := bbr(GinkgoT().TempDir(), "hard", "deployment", "backup-cleanup")
		Expect(r.code).To(Equal(1), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
		Expect(r.err).To(MatchRegexp(`belongs to a bbr run of SSH user bosh_\w+, started \d{4}-\d\d-\d\dT[\d:]+Z, which is still running`))
		Expect(scriptLog(worker(), "alpha")).NotTo(ContainSubstring("post-backup-unlock"), "the live run's lock is left alone")

		setFault(worker(), "alpha-backup-hold", "")
		Eventually(session, time.Minute).Should(gexec.Exit(0))
		Expect(artifact.Open(onlyDir(firstDir))).Error().NotTo(HaveOccurred())

		// A dead run's leftovers are cleaned as before.
		Expect(os.MkdirAll(filepath.Join(worker().Root, "store", "bbr-backup", "alpha"), 0o700)).To(Succeed())
		bbr(GinkgoT().TempDir(), "hard", "deployment", "backup-cleanup").expectSuccess()
	})

	It("refuses, before locking, a destination without the room the last backup took; --skip-space-check goes on", func() {
		full := GinkgoT().TempDir()
		sh("mount -t tmpfs -o size=1m bbr-hardening-space " + full)
		DeferCleanup(func() { sh("umount " + full) })
		last := filepath.Join(full, "hard_20261125T000000Z")
		Expect(os.Mkdir(last, 0o700)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(last, "metadata"), nil, 0o600)).To(Succeed())
		Expect(os.Truncate(filepath.Join(last, "metadata"), 2<<20)).To(Succeed()) // sparse: 2 MiB apparent

		r := bbr(full, "hard", "deployment", "backup")
		Expect(r.code).To(Equal(1), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
		Expect(r.err).To(ContainSubstring("the backup of hard needs about 2.2M (its last backup here, hard_20261125T000000Z, plus a tenth)"))
		Expect(scriptLog(worker(), "alpha")).NotTo(ContainSubstring("pre-backup-lock"))

		bbr(full, "hard", "deployment", "backup", "--skip-space-check").expectSuccess()
		Expect(scriptLog(worker(), "alpha")).To(ContainSubstring("post-backup-unlock"))
	})
})
