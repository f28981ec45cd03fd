package labsuite_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

// writeSlowDeployment is a deployment whose backup script hangs, with
// lock and unlock scripts that log what they were told.
func writeSlowDeployment() string {
	dir := filepath.Join(GinkgoT().TempDir(), "slow")
	scripts := map[string]string{
		"pre-backup-lock":    `echo locked >> /var/vcap/sys/log/slow/bbr.log`,
		"backup":             `echo backup-started >> /var/vcap/sys/log/slow/bbr.log; sleep 600`,
		"post-backup-unlock": `echo "unlocked after_success=$BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL" >> /var/vcap/sys/log/slow/bbr.log`,
	}
	for name, body := range scripts {
		path := filepath.Join(dir, "releases", "slow-release", "jobs", "slow", "bin", "bbr", name)
		Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
		Expect(os.WriteFile(path, []byte("#!/bin/bash\nmkdir -p /var/vcap/sys/log/slow\n"+body+"\n"), 0o755)).To(Succeed())
	}
	manifest := `name: slow
releases: [{name: slow-release, version: "1"}]
instance_groups:
- name: worker
  instances: 2
  azs: [z1]
  jobs: [{name: slow, release: slow-release}]
`
	Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest), 0o644)).To(Succeed())
	return dir
}

var _ = Describe("a signal during a backup", Ordered, func() {
	BeforeAll(func() { labUp("basic", writeSlowDeployment()) })

	DescribeTable("unlocks, removes what it left on the instances, and exits non-zero",
		func(sig syscall.Signal) {
			for i := 0; i < 2; i++ {
				_ = os.Remove(filepath.Join(instance("slow", "worker", i).Root, "sys", "log", "slow", "bbr.log"))
			}
			cmd := exec.Command(bbrBin, "deployment", "backup")
			cmd.Dir = GinkgoT().TempDir()
			cmd.Env = append(os.Environ(), bbrEnv("slow")...)
			session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			for i := 0; i < 2; i++ {
				Eventually(func() string { return jobLog(instance("slow", "worker", i), "slow") }).Should(ContainSubstring("backup-started"))
			}

			session.Signal(sig)
			Eventually(session, 2*time.Minute).Should(gexec.Exit())
			Expect(session.ExitCode()).NotTo(Equal(0))
			Expect(session.Err).To(gbytes.Say("stopping, then unlocking and cleaning up"))
			for i := 0; i < 2; i++ {
				Expect(jobLog(instance("slow", "worker", i), "slow")).To(ContainSubstring("unlocked after_success=false"))
			}
			Expect(stagingLeft("slow")).To(BeEmpty())
			Expect(labUsers()).To(BeEmpty())
		},
		Entry("SIGTERM (an errand or pipeline stopping bbr)", syscall.SIGTERM),
		Entry("SIGINT (Ctrl-C)", syscall.SIGINT),
	)

	// A cancelled errand's agent, or Ctrl-C on `bbr ... | tee log`, signals
	// the whole process group: the reader of bbr's output dies with bbr's
	// first message still to write. A write to a closed pipe must not kill
	// bbr (Go's default for stdout and stderr) before it unlocks.
	It("still unlocks and cleans up when the reader of its output is gone", func() {
		for i := 0; i < 2; i++ {
			_ = os.Remove(filepath.Join(instance("slow", "worker", i).Root, "sys", "log", "slow", "bbr.log"))
		}
		r, w, err := os.Pipe()
		Expect(err).NotTo(HaveOccurred())
		cmd := exec.Command(bbrBin, "deployment", "backup")
		cmd.Dir = GinkgoT().TempDir()
		cmd.Env = append(os.Environ(), bbrEnv("slow")...)
		cmd.Stdout, cmd.Stderr = w, w
		Expect(cmd.Start()).To(Succeed())
		w.Close()
		go io.Copy(GinkgoWriter, r)
		for i := 0; i < 2; i++ {
			Eventually(func() string { return jobLog(instance("slow", "worker", i), "slow") }).Should(ContainSubstring("backup-started"))
		}

		Expect(r.Close()).To(Succeed())
		Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		Eventually(done, 2*time.Minute).Should(Receive())
		status := cmd.ProcessState.Sys().(syscall.WaitStatus)
		Expect(status.Signaled()).To(BeFalse(), "killed by %v", status.Signal())
		Expect(status.ExitStatus()).NotTo(Equal(0))
		for i := 0; i < 2; i++ {
			Expect(jobLog(instance("slow", "worker", i), "slow")).To(ContainSubstring("unlocked after_success=false"))
		}
		Expect(stagingLeft("slow")).To(BeEmpty())
		Expect(labUsers()).To(BeEmpty())
	})
})

var _ = Describe("a second signal", Ordered, func() {
	BeforeAll(func() {
		// The unlock hangs while /var/vcap/store/hang exists, so the first
		// signal's unlock is still running when the second one comes.
		labUp("basic", writeDeployment("stuck", 1, map[string]string{
			"pre-backup-lock":    `true`,
			"backup":             `touch /var/vcap/store/backup-started; sleep 600`,
			"post-backup-unlock": `touch /var/vcap/store/unlock-started; while [ -e /var/vcap/store/hang ]; do sleep 0.1; done`,
		}))
	})

	It("aborts at once and lists exactly what is left, which backup-cleanup then undoes", func() {
		root := instance("stuck", "worker", 0).Root
		hang := filepath.Join(root, "store", "hang")
		Expect(os.WriteFile(hang, nil, 0o644)).To(Succeed())
		cmd := exec.Command(bbrBin, "deployment", "backup")
		cmd.Dir = GinkgoT().TempDir()
		cmd.Env = append(os.Environ(), bbrEnv("stuck")...)
		session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(filepath.Join(root, "store", "backup-started")).Should(BeAnExistingFile())

		session.Signal(syscall.SIGINT)
		Eventually(filepath.Join(root, "store", "unlock-started")).Should(BeAnExistingFile())
		session.Signal(syscall.SIGINT)
		Eventually(session, time.Minute).Should(gexec.Exit(1))
		id := instance("stuck", "worker", 0).ID
		Expect(session.Err).To(gbytes.Say("Aborted at once. Left behind:\nDeployment stuck:\n"))
		Expect(session.Err).To(gbytes.Say("may still be locked: stuck-job on worker/" + id))
		Expect(session.Err).To(gbytes.Say("/var/vcap/store/bbr-backup left on: worker/" + id))
		Expect(session.Err).To(gbytes.Say(`SSH user bosh_[0-9a-f]+ left on: worker/` + id))
		Expect(session.Err).To(gbytes.Say("backup-cleanup"))
		Expect(stagingLeft("stuck")).NotTo(BeEmpty(), "it really was left")

		Expect(os.Remove(hang)).To(Succeed())
		runIn(cmd.Dir, bbrEnv("stuck"), bbrBin, "deployment", "backup-cleanup").expectSuccess()
		Expect(stagingLeft("stuck")).To(BeEmpty())
	})
})

var _ = Describe("a signal while a script is stopping", Ordered, func() {
	var logPath, stubborn string

	BeforeAll(func() {
		// The backup script needs a moment after SIGTERM to stop its writer;
		// unlocking before it has stopped would let it write into a store
		// the unlock hands back to the job. With /var/vcap/store/stubborn
		// present it ignores SIGTERM and runs on for a minute.
		labUp("basic", writeDeployment("graceful", 1, map[string]string{
			"pre-backup-lock": `true`,
			"backup": `log=/var/vcap/store/graceful.log
if [ -e /var/vcap/store/stubborn ]; then
  trap 'echo got-term >> $log' TERM
  echo backup-started >> $log
  for i in $(seq 600); do sleep 0.1; done
  echo backup-finished >> $log
  exit 0
fi
trap 'sleep 1; echo backup-stopped >> $log; exit 1' TERM
echo backup-started >> $log
while :; do sleep 0.1; done`,
			"post-backup-unlock": `echo unlocked >> /var/vcap/store/graceful.log`,
		}))
		root := instance("graceful", "worker", 0).Root
		logPath = filepath.Join(root, "store", "graceful.log")
		stubborn = filepath.Join(root, "store", "stubborn")
	})

	interruptedBackup := func() *gexec.Session {
		_ = os.Remove(logPath)
		cmd := exec.Command(bbrBin, "deployment", "backup")
		cmd.Dir = GinkgoT().TempDir()
		cmd.Env = append(os.Environ(), bbrEnv("graceful")...)
		session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() ([]byte, error) { return os.ReadFile(logPath) }).Should(ContainSubstring("backup-started"))
		session.Signal(syscall.SIGTERM)
		return session
	}

	It("lets the script finish its SIGTERM handler before unlocking", func() {
		session := interruptedBackup()
		Eventually(session, time.Minute).Should(gexec.Exit())
		Expect(session.ExitCode()).NotTo(Equal(0))
		Expect(os.ReadFile(logPath)).To(Equal([]byte("backup-started\nbackup-stopped\nunlocked\n")))
		Expect(stagingLeft("graceful")).To(BeEmpty())
	})

	It("unlocks without the script once it outlives the grace period, saying it may still run", func() {
		Expect(os.WriteFile(stubborn, nil, 0o644)).To(Succeed())
		session := interruptedBackup()
		// The script runs a minute; the grace is 10 s.
		Eventually(session, 45*time.Second).Should(gexec.Exit())
		Expect(session.ExitCode()).NotTo(Equal(0))
		Expect(session.Err).To(gbytes.Say("had not exited 10s after SIGTERM and may still be running there"))
		// Removing the SSH user (as the agent does) signals the script again.
		log, err := os.ReadFile(logPath)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(log)).To(HavePrefix("backup-started\ngot-term\nunlocked\n"))
		Expect(string(log)).NotTo(ContainSubstring("backup-finished"))
		Expect(labUsers()).To(BeEmpty())
	})
})
