package labsuite_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/bbr-release/bbr/src/artifact"
)

// Faults injected into one lab (issue 5): failing scripts in every phase,
// Director errors, a full local disk, corrupted artifacts, two backups at
// once, and an instance whose sshd dies mid-transfer. Each checks that
// nothing is left locked, the error is clear, the exit code's bits are
// right, and no staging directory or SSH user is left behind.
var _ = Describe("Faults", Ordered, ContinueOnFailure, func() {
	var workDir, good string
	var worker func() modelInstance

	BeforeAll(func() {
		labUp("basic",
			writeFaultDeployment("faulty", 1, "alpha", "beta"),
			writeFaultDeployment("fragile", 2, "fragile"))
		worker = func() modelInstance { return instance("faulty", "worker", 0) }
		dir := GinkgoT().TempDir()
		bbr(dir, "faulty", "deployment", "backup").expectSuccess()
		good = onlyDir(dir)
	})

	BeforeEach(func() {
		workDir = GinkgoT().TempDir()
		resetFaults("faulty")
	})

	// nothingLeft checks the platform is as it was: no staging directory,
	// no SSH user.
	nothingLeft := func(deployment string) {
		ExpectWithOffset(1, stagingLeft(deployment)).To(BeEmpty(), "no /var/vcap/store/bbr-backup is left")
		ExpectWithOffset(1, labUsers()).To(BeEmpty(), "every SSH user bbr asked for is removed")
	}
	// unlockedBoth checks both jobs ran the unlock of the phase.
	unlockedBoth := func(unlock string) {
		for _, job := range []string{"alpha", "beta"} {
			ExpectWithOffset(1, scriptLog(worker(), job)).To(ContainSubstring(unlock), "%s was unlocked", job)
		}
	}
	neverLocked := func() {
		for _, job := range []string{"alpha", "beta"} {
			log := scriptLog(worker(), job)
			ExpectWithOffset(1, log).NotTo(ContainSubstring("pre-backup-lock"), "%s was never locked", job)
			ExpectWithOffset(1, log).NotTo(ContainSubstring("pre-restore-lock"), "%s was never locked", job)
		}
	}
	noGoodArtifact := func() {
		good, _ := artifactsIn(workDir)
		ExpectWithOffset(1, good).To(BeEmpty(), "a failed backup is never listed as good")
	}

	Describe("a script failing during backup", func() {
		DescribeTable("unlocks everything, names the script, and exits with the right bits",
			func(fault, content string, code int, message string, locked bool, unlock string, artifactFailed bool) {
				setFault(worker(), fault, content)
				r := bbr(workDir, "faulty", "deployment", "backup")
				Expect(r.code).To(Equal(code), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
				Expect(r.err).To(ContainSubstring(message))
				if locked {
					unlockedBoth(unlock)
				} else {
					neverLocked()
				}
				if artifactFailed {
					noGoodArtifact()
				}
				nothingLeft("faulty")
			},
			Entry("pre-backup-lock", "alpha-pre-backup-lock", "x", 4,
				"Error attempting to run pre-backup-lock for job alpha on worker/", true, "post-backup-unlock after_success=false", true),
			Entry("backup", "alpha-backup", "x", 1,
				"Error attempting to run backup for job alpha on worker/", true, "post-backup-unlock after_success=false", true),
			Entry("post-backup-unlock", "alpha-post-backup-unlock", "x", 8,
				"Error attempting to run post-backup-unlock for job alpha on worker/", true, "post-backup-unlock after_success=true", false),
			Entry("metadata exiting non-zero", "alpha-metadata", "x", 1,
				"running metadata script of job alpha on worker/", false, "", true),
			Entry("metadata printing bad YAML", "alpha-metadata", "yaml", 1,
				"job alpha on worker/", false, "", true),
		)

		// BUG: after a post-backup-unlock failure the backup scripts had
		// succeeded and the drain completed ("Backup created of faulty" is
		// logged), but the artifact is renamed <name>.failed because
		// Backup hands the unlock error to art.Finish. Upstream keeps the
		// artifact (exit 8), and backup.go's own comment says a failed
		// unlock does not make the staged backups bad: a good backup is
		// thrown away.
		It("a post-backup-unlock failure keeps the drained artifact as a good backup, with exit 8", func() {
			setFault(worker(), "alpha-post-backup-unlock", "x")
			r := bbr(workDir, "faulty", "deployment", "backup")
			Expect(r.code).To(Equal(8))
			good, other := artifactsIn(workDir)
			Expect(other).To(BeEmpty())
			Expect(good).To(HaveLen(1))
			art, err := artifact.Open(filepath.Join(workDir, good[0]))
			Expect(err).NotTo(HaveOccurred())
			Expect(artifact.Verify(context.Background(), art)).To(Succeed())
		})
	})

	Describe("a script failing during restore", func() {
		DescribeTable("unlocks everything, names the script, and exits with the right bits",
			func(fault, content string, code int, message string, locked bool) {
				setFault(worker(), fault, content)
				r := bbr(workDir, "faulty", "deployment", "restore", "--artifact-path", good)
				Expect(r.code).To(Equal(code), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
				Expect(r.err).To(ContainSubstring(message))
				if locked {
					unlockedBoth("post-restore-unlock")
				} else {
					neverLocked()
				}
				nothingLeft("faulty")
			},
			Entry("pre-restore-lock", "alpha-pre-restore-lock", "x", 1,
				"Error attempting to run pre-restore-lock for job alpha on worker/", true),
			Entry("restore", "alpha-restore", "x", 1,
				"Error attempting to run restore for job alpha on worker/", true),
			Entry("post-restore-unlock", "alpha-post-restore-unlock", "x", 8,
				"Error attempting to run post-restore-unlock for job alpha on worker/", true),
			Entry("metadata exiting non-zero", "alpha-metadata", "x", 1, "running metadata script of job alpha on worker/", false),
			Entry("metadata printing bad YAML", "alpha-metadata", "yaml", 1, "job alpha on worker/", false),
		)

		It("a pre-restore-lock failure stops before any restore script runs", func() {
			setFault(worker(), "alpha-pre-restore-lock", "x")
			r := bbr(workDir, "faulty", "deployment", "restore", "--artifact-path", good)
			Expect(r.code).To(Equal(1))
			for _, job := range []string{"alpha", "beta"} {
				Expect(scriptLog(worker(), job)).NotTo(MatchRegexp(`(?m)^restore `))
			}
		})

		// Restore reads each file once, checking it as it streams to the
		// instance: a corrupt one stops the restore before any lock, and
		// what was staged is removed.
		DescribeTable("a corrupted artifact is refused before anything is locked, naming the file",
			func(corrupt func(dir string), message string) {
				dir := filepath.Join(workDir, filepath.Base(good))
				Expect(exec.Command("cp", "-a", good, dir).Run()).To(Succeed())
				corrupt(dir)
				r := bbr(workDir, "faulty", "deployment", "restore", "--artifact-path", dir)
				Expect(r.code).To(Equal(1), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
				Expect(r.err).To(ContainSubstring(message))
				neverLocked()
				for _, job := range []string{"alpha", "beta"} {
					Expect(scriptLog(worker(), job)).NotTo(MatchRegexp(`(?m)^(pre-restore-lock|restore|post-restore-unlock) `), "nothing was restored")
				}
				nothingLeft("faulty")
			},
			Entry("a flipped byte in a tar", func(dir string) {
				path := filepath.Join(dir, "worker-0-alpha.tar")
				raw, err := os.ReadFile(path)
				Expect(err).NotTo(HaveOccurred())
				i := bytes.Index(raw, []byte("alpha data"))
				Expect(i).To(BeNumerically(">", 0))
				raw[i] ^= 0x01
				Expect(os.WriteFile(path, raw, 0o600)).To(Succeed())
			}, "checksums don't match for worker-0-alpha.tar"),
			Entry("a truncated tar", func(dir string) {
				Expect(os.Truncate(filepath.Join(dir, "worker-0-beta.tar"), 700)).To(Succeed())
			}, "worker-0-beta.tar"),
			Entry("a checksum edited in the metadata", func(dir string) {
				path := filepath.Join(dir, "metadata")
				raw, err := os.ReadFile(path)
				Expect(err).NotTo(HaveOccurred())
				sum := artifactSum(dir, "worker-0-beta.tar", "./data")
				edited := strings.Replace(string(raw), sum, strings.Repeat("0", len(sum)), 1)
				Expect(edited).NotTo(Equal(string(raw)))
				Expect(os.WriteFile(path, []byte(edited), 0o600)).To(Succeed())
			}, "checksums don't match for worker-0-beta.tar"),
			Entry("metadata that is not YAML", func(dir string) {
				Expect(os.WriteFile(filepath.Join(dir, "metadata"), []byte("instances: [unclosed\n"), 0o600)).To(Succeed())
			}, "metadata"),
			Entry("a missing tar", func(dir string) {
				Expect(os.Remove(filepath.Join(dir, "worker-0-beta.tar"))).To(Succeed())
			}, "worker-0-beta.tar is missing"),
		)
	})

	Describe("Director errors", func() {
		AfterEach(func() {
			setDirectorFault("ssh-setup", "")
			setDirectorFault("ssh-cleanup", "")
		})

		It("an unreachable Director fails at once, saying so", func() {
			env := append(bbrEnv("faulty"), "BOSH_ENVIRONMENT=https://127.0.0.1:25699")
			r := runIn(workDir, env, bbrBin, "deployment", "backup")
			Expect(r.code).To(Equal(1))
			Expect(r.err).To(ContainSubstring("unreachable"))
			Expect(r.err).To(ContainSubstring("127.0.0.1:25699"))
			neverLocked()
			noGoodArtifact()
		})

		DescribeTable("an SSH setup that fails locks nothing and leaves nothing",
			func(content, message string) {
				setDirectorFault("ssh-setup", content)
				r := bbr(workDir, "faulty", "deployment", "backup")
				Expect(r.code).To(Equal(1), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
				Expect(r.err).To(ContainSubstring(message))
				Expect(r.err).To(ContainSubstring("setting up ssh on worker"))
				neverLocked()
				noGoodArtifact()
				nothingLeft("faulty")
			},
			Entry("500 on the request", "500", "injected fault: internal error on ssh setup"),
			Entry("a task that errors", "task-error", "state is 'error'"),
		)

		// BUG: when the SSH setup task fails, bbr says only "Expected task
		// '39' to succeed but state is 'error'": the task's own error
		// (here "injected fault: ssh setup task failed") is not shown,
		// nor how to see it (bosh task 39).
		It("a failed SSH setup task's error message is shown", func() {
			setDirectorFault("ssh-setup", "task-error")
			r := bbr(workDir, "faulty", "deployment", "backup")
			Expect(r.code).To(Equal(1))
			Expect(r.err).To(ContainSubstring("injected fault: ssh setup task failed"))
		})

		// cleanupFault runs a backup while the Director fails SSH cleanup,
		// then removes the users it left; it returns them with the result.
		cleanupFault := func(content string) (result, []string) {
			setDirectorFault("ssh-cleanup", content)
			r := bbr(workDir, "faulty", "deployment", "backup")
			users := labUsers()
			setDirectorFault("ssh-cleanup", "")
			directorCleanUpSSH("faulty")
			return r, users
		}

		It("an SSH cleanup answered 500 gives the cleanup bit; the backup is good and unlocked", func() {
			r, users := cleanupFault("500")
			Expect(users).To(HaveLen(1), "the fault really left the user")
			Expect(r.code).To(Equal(16), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
			Expect(r.err).To(ContainSubstring("cleaning up ssh user on worker/"))
			Expect(r.err).To(ContainSubstring("500"))
			unlockedBoth("post-backup-unlock after_success=true")
			Expect(stagingLeft("faulty")).To(BeEmpty())
			good, _ := artifactsIn(workDir)
			Expect(good).To(HaveLen(1), "the backup itself is good")
		})

		// backup-cleanup makes and removes a user of its own, so the
		// operator needs the name of the one left.
		It("an SSH cleanup that fails names the user left behind", func() {
			r, users := cleanupFault("500")
			Expect(users).To(HaveLen(1))
			Expect(r.err).To(ContainSubstring(users[0]))
		})

		// bosh-cli posts the SSH cleanup without waiting for its task, as
		// upstream bbr; bbr posts it itself, follows the redirect to the
		// task and waits for it, so a failed cleanup task is seen.
		It("an SSH cleanup task that errors gives the cleanup bit and names the user left", func() {
			r, users := cleanupFault("task-error")
			Expect(users).To(HaveLen(1), "the fault really left the user")
			Expect(r.code).To(Equal(16), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
			Expect(r.err).To(ContainSubstring(users[0]))
			Expect(r.err).To(MatchRegexp(`task \d+ ended in state error: .*injected fault: ssh cleanup task failed`))
			good, _ := artifactsIn(workDir)
			Expect(good).To(HaveLen(1), "the backup itself is good")
		})
	})

	It("a full local disk during drain fails cleanly, says so, and removes the remote staging", func() {
		full := GinkgoT().TempDir()
		sh("mount -t tmpfs -o size=1m bbr-faults-full " + full)
		DeferCleanup(func() { sh("umount " + full) })
		setFault(worker(), "alpha-big", "x")

		r := bbr(full, "faulty", "deployment", "backup")
		Expect(r.code).To(Equal(1), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
		Expect(r.err).To(ContainSubstring("the disk holding the artifact is full"))
		// The unlock runs before the drain: the backup scripts succeeded.
		unlockedBoth("post-backup-unlock after_success=true")
		good, other := artifactsIn(full)
		Expect(good).To(BeEmpty())
		Expect(other).To(ConsistOf(HaveSuffix(".failed")))
		nothingLeft("faulty")
		// The FAILED file was reserved before the disk filled: it says why.
		Expect(os.ReadFile(filepath.Join(full, other[0], artifact.FailedFile))).To(ContainSubstring("the disk holding the artifact is full"))
		// Nothing was left on the platform, so no cleanup is advised.
		Expect(r.err).NotTo(ContainSubstring("It is recommended that you run"))
		r = bbr(full, "faulty", "deployment", "restore", "--artifact-path", other[0])
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("is a failed backup and cannot be restored: Error streaming backup"))
	})

	It("a second backup of the same deployment refuses clearly and does not disturb the first", func() {
		setFault(worker(), "alpha-backup-hold", "x")
		DeferCleanup(setFault, worker(), "alpha-backup-hold", "")
		session, firstDir := bbrStart("faulty", "deployment", "backup")
		Eventually(filepath.Join(worker().Root, "store", "faults", "alpha-backup-held")).Should(BeAnExistingFile())

		r := bbr(workDir, "faulty", "deployment", "backup")
		Expect(r.code).To(Equal(1), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
		Expect(r.err).To(ContainSubstring("/var/vcap/store/bbr-backup already exists on instance worker/"))
		Expect(r.err).To(ContainSubstring("which is still running; wait for it to finish"))
		Expect(strings.Count(scriptLog(worker(), "alpha"), "pre-backup-lock")).To(Equal(1), "the second run locked nothing")
		Expect(scriptLog(worker(), "alpha")).NotTo(ContainSubstring("post-backup-unlock"), "nor unlocked the first run's lock")
		entries, _ := os.ReadDir(workDir)
		for _, e := range entries {
			Expect(e.IsDir()).To(BeFalse(), "the second run made no artifact directory")
		}
		Expect(session.ExitCode()).To(Equal(-1), "the first run is still going")

		setFault(worker(), "alpha-backup-hold", "")
		Eventually(session, time.Minute).Should(gexec.Exit(0))
		art, err := artifact.Open(onlyDir(firstDir))
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), art)).To(Succeed())
		Expect(art.Metadata().Files()).To(HaveKey("worker-0-alpha.tar"))
		unlockedBoth("post-backup-unlock after_success=true")
		nothingLeft("faulty")
	})

	Describe("a signal in each phase", func() {
		// start runs bbr in the background; the spec signals it once the
		// phase's script is held (or, for drain, once data flows).
		start := func(args ...string) *gexec.Session {
			cmd := exec.Command(bbrBin, append([]string{"deployment"}, args...)...)
			cmd.Dir = workDir
			cmd.Env = append(os.Environ(), bbrEnv("faulty")...)
			session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(session.Kill)
			return session
		}

		DescribeTable("stops, unlocks what was locked, cleans up, and exits non-zero (unless the work was done)",
			func(sig syscall.Signal, restore bool, held, unlock string) {
				args := []string{"backup"}
				if restore {
					args = []string{"restore", "--artifact-path", good}
				}
				if held == "drain" {
					setFault(worker(), "alpha-huge", "x")
				} else {
					setFault(worker(), "alpha-"+held+"-hold", "x")
					DeferCleanup(setFault, worker(), "alpha-"+held+"-hold", "")
				}
				session := start(args...)
				if held == "drain" {
					tar := filepath.Join(workDir, "faulty_*"+artifact.InProgressSuffix, "worker-0-alpha.tar")
					Eventually(func() int64 { return fileSize(tar) }, time.Minute, 5*time.Millisecond).Should(BeNumerically(">", 1<<20))
				} else {
					Eventually(filepath.Join(worker().Root, "store", "faults", "alpha-"+held+"-held")).Should(BeAnExistingFile())
				}

				session.Signal(sig)
				if strings.Contains(held, "unlock") {
					// An unlock under way is let finish.
					setFault(worker(), "alpha-"+held+"-hold", "")
				}
				Eventually(session, 2*time.Minute).Should(gexec.Exit())
				Expect(string(session.Err.Contents())).To(ContainSubstring("stopping, then unlocking and cleaning up"))
				if held == "post-restore-unlock" {
					// The signal came during the last step: nothing was
					// left to stop, the restore is complete.
					Expect(session.ExitCode()).To(Equal(0))
					Expect(string(session.Out.Contents())).To(ContainSubstring("Completed restore of faulty"))
				} else {
					Expect(session.ExitCode()).NotTo(Equal(0))
				}
				if unlock != "" {
					unlockedBoth(unlock)
				} else {
					neverLocked()
				}
				if !restore {
					noGoodArtifact()
				}
				nothingLeft("faulty")
			},
			Entry("SIGTERM while finding the deployment (metadata)", syscall.SIGTERM, false, "metadata", ""),
			Entry("SIGTERM in pre-backup-lock", syscall.SIGTERM, false, "pre-backup-lock", "post-backup-unlock after_success=false"),
			Entry("SIGINT in post-backup-unlock", syscall.SIGINT, false, "post-backup-unlock", "post-backup-unlock after_success=true"),
			Entry("SIGTERM during drain", syscall.SIGTERM, false, "drain", "post-backup-unlock after_success=true"),
			Entry("SIGINT in pre-restore-lock", syscall.SIGINT, true, "pre-restore-lock", "post-restore-unlock"),
			Entry("SIGTERM in restore", syscall.SIGTERM, true, "restore", "post-restore-unlock"),
			Entry("SIGINT in post-restore-unlock", syscall.SIGINT, true, "post-restore-unlock", "post-restore-unlock"),
		)

		It("a long drain says how far it got, every --progress-interval", func() {
			setFault(worker(), "alpha-huge", "x")
			session := start("--progress-interval", "1s", "backup")
			Eventually(session.Out, time.Minute).Should(gbytes.Say(`INFO - Copying: \d+(\.\d)?[KMG] so far at \d+(\.\d)?[KMG]/s, \d of 2 jobs done`))
			session.Signal(syscall.SIGTERM)
			Eventually(session, 2*time.Minute).Should(gexec.Exit())
			nothingLeft("faulty")
		})
	})

	// These run last: they kill fragile's worker/0 for good.
	Describe("an instance whose sshd dies", Ordered, func() {
		var victim, survivor modelInstance

		BeforeAll(func() {
			victim, survivor = instance("fragile", "worker", 0), instance("fragile", "worker", 1)
		})

		It("in the middle of a transfer: fails, unlocked, artifact not good, staging left only on the dead instance", func() {
			setFault(victim, "fragile-huge", "x")
			DeferCleanup(func() { _ = os.RemoveAll(filepath.Join(victim.Root, "store", "bbr-backup")) })
			cmd := exec.Command(bbrBin, "deployment", "backup")
			cmd.Dir = workDir
			cmd.Env = append(os.Environ(), bbrEnv("fragile")...)
			session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(session.Kill)
			tar := filepath.Join(workDir, "fragile_*"+artifact.InProgressSuffix, "worker-0-fragile.tar")
			Eventually(func() int64 { return fileSize(tar) }, time.Minute, 5*time.Millisecond).Should(BeNumerically(">", 1<<20))

			Expect(killNamespace(victim)).To(BeNumerically(">=", 2), "the listening sshd and the session's")
			Eventually(session, 2*time.Minute).Should(gexec.Exit())
			out, errOut := string(session.Out.Contents()), string(session.Err.Contents())
			Expect(session.ExitCode()).To(Equal(1|16), "stdout:\n%s\nstderr:\n%s", out, errOut)
			Expect(errOut).To(ContainSubstring("Error streaming backup from remote instance worker/" + victim.ID))
			Expect(errOut).To(ContainSubstring("removing /var/vcap/store/bbr-backup on worker/" + victim.ID))
			Expect(errOut).To(ContainSubstring("backup-cleanup"))
			for _, inst := range []modelInstance{victim, survivor} {
				Expect(scriptLog(inst, "fragile")).To(ContainSubstring("post-backup-unlock after_success=true"))
			}
			noGoodArtifact()
			Expect(stagingLeft("fragile")).To(ConsistOf("worker/"+victim.ID), "only the dead instance keeps its staging")
			Expect(labUsers()).To(BeEmpty(), "the Director's agent removed the users")
		})

		It("(connection refused): fails before anything is locked and leaves nothing", func() {
			_ = os.RemoveAll(filepath.Join(victim.Root, "store", "bbr-backup"))
			for _, inst := range []modelInstance{victim, survivor} {
				_ = os.RemoveAll(filepath.Join(inst.Root, "store", "log"))
			}
			r := bbr(workDir, "fragile", "deployment", "backup")
			Expect(r.code).To(Equal(1), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
			Expect(r.err).To(ContainSubstring("connection refused"))
			Expect(r.err).To(ContainSubstring(victim.IP))
			Expect(scriptLog(survivor, "fragile")).NotTo(ContainSubstring("pre-backup-lock"))
			noGoodArtifact()
			nothingLeft("fragile")
		})
	})
})

// artifactSum is the checksum the artifact's metadata records for file in tar.
func artifactSum(dir, tar, file string) string {
	art, err := artifact.Open(dir)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	sum := art.Metadata().Files()[tar][file]
	ExpectWithOffset(1, sum).NotTo(BeEmpty(), fmt.Sprintf("no %s in %s", file, tar))
	return sum
}
