package labsuite_test

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/model"
)

var _ = Describe("--script-timeout", Ordered, func() {
	var workDir string

	BeforeAll(func() {
		hungLock := writeDeployment("hunglock", 1, map[string]string{
			"pre-backup-lock":    `echo locked >> /var/vcap/store/bbr.log; sleep 600`,
			"backup":             `echo data > "${BBR_ARTIFACT_DIRECTORY%/}/data"`,
			"post-backup-unlock": `echo "unlocked after_success=$BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL" >> /var/vcap/store/bbr.log`,
		})
		stubborn := writeDeployment("stubbornlock", 1, map[string]string{
			"pre-backup-lock":    `trap '' TERM; sleep 600`,
			"backup":             `true`,
			"post-backup-unlock": `echo unlocked >> /var/vcap/store/bbr.log`,
		})
		labUp("basic", writeSlowDeployment(), hungLock, stubborn)
	})

	BeforeEach(func() { workDir = GinkgoT().TempDir() })

	AfterEach(func() {
		Expect(labUsers()).To(BeEmpty(), "every SSH user bbr asked for is removed")
		Expect(stagingLeft("slow")).To(BeEmpty())
		Expect(stagingLeft("hunglock")).To(BeEmpty())
		Expect(stagingLeft("stubbornlock")).To(BeEmpty())
	})

	// The timeout bounds every script, the unlocks these specs need to
	// succeed too: 5 s leaves a busy CI machine room for an SSH session
	// and sudo, where 1 s did not.
	It("fails a hung backup script, unlocks with after_success=false and exits 1", func() {
		r := bbr(workDir, "slow", "deployment", "--script-timeout", "5s", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("backup timed out after 5s (the script timeout)"))
		for i := 0; i < 2; i++ {
			Expect(jobLog(instance("slow", "worker", i), "slow")).To(ContainSubstring("unlocked after_success=false"))
		}
		// The script itself was ended on the instance, not just abandoned.
		for i := 0; i < 2; i++ {
			Eventually(func() []string { return commandsIn(instance("slow", "worker", i)) }).ShouldNot(ContainElement("sleep 600"))
		}
	})

	It("fails a hung lock script with the lock bit and still unlocks", func() {
		r := runIn(workDir, append(bbrEnv("hunglock"), "BBR_SCRIPT_TIMEOUT=5s"), bbrBin, "deployment", "backup")
		Expect(r.code).To(Equal(4))
		Expect(r.err).To(ContainSubstring("pre-backup-lock timed out after 5s"))
		Expect(sh("cat " + instance("hunglock", "worker", 0).Root + "/store/bbr.log")).To(ContainSubstring("unlocked after_success=false"))
	})

	It("says a lock script that ignored SIGTERM was killed after the script timeout", func() {
		r := runIn(workDir, append(bbrEnv("stubbornlock"), "BBR_SCRIPT_TIMEOUT=5s"), bbrBin, "deployment", "backup")
		Expect(r.code).To(Equal(4))
		Expect(r.err).To(ContainSubstring("pre-backup-lock was killed: it ignored SIGTERM when it timed out after 5s (the script timeout)"))
		Expect(sh("cat " + instance("stubbornlock", "worker", 0).Root + "/store/bbr.log")).To(ContainSubstring("unlocked"))
	})

	It("rejects a timeout below one second with a message saying what to give", func() {
		r := bbr(workDir, "slow", "deployment", "--script-timeout", "10ms", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("--script-timeout must be at least 1s (or 0 for no limit), got 10ms."))
	})

	It("rejects a progress interval below one second the same way, for both commands", func() {
		r := bbr(workDir, "slow", "deployment", "--progress-interval", "100ms", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("--progress-interval must be at least 1s (or 0 for none), got 100ms."))
		r = bbr(workDir, "slow", "director", "--host", "127.0.0.1", "--username", "u", "--private-key-path", "/nonexistent", "--progress-interval", "-1s", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("--progress-interval must be at least 1s (or 0 for none), got -1s."))
	})
})

// commandsIn lists the command lines of the processes running in the
// instance's mount namespace.
func commandsIn(inst model.Instance) []string {
	var cmds []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if ns, err := os.Readlink(filepath.Join(d, "ns", "mnt")); err != nil || ns != inst.MountNS {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && len(raw) > 0 {
			cmds = append(cmds, strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " ")))
		}
	}
	return cmds
}
