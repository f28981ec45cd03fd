package labsuite_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/report"
)

// writeWaitingDeployment is a deployment whose backup waits until
// /var/vcap/store/go-on exists, logging its lock and unlock.
func writeWaitingDeployment() string {
	log := func(what string) string {
		return "mkdir -p /var/vcap/sys/log/waiting; echo " + what + " >> /var/vcap/sys/log/waiting/bbr.log"
	}
	return writeDeployment("waiting", 1, map[string]string{
		"pre-backup-lock":    log("locked"),
		"backup":             `while [ ! -e /var/vcap/store/go-on ]; do sleep 0.1; done; echo data > "${BBR_ARTIFACT_DIRECTORY%/}/data"`,
		"post-backup-unlock": log("unlocked"),
		"restore":            `true`,
	})
}

// waitingLines counts the lines of the waiting deployment's log that are
// exactly what ("locked", "unlocked").
func waitingLines(what string) int {
	raw, _ := os.ReadFile(filepath.Join(instance("waiting", "worker", 0).Root, "sys", "log", "waiting", "bbr.log"))
	return strings.Count("\n"+string(raw), "\n"+what+"\n")
}

// inInstance runs a command in the instance's mount namespace as root, as
// the agent or monit would.
func inInstance(inst model.Instance, args ...string) result {
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(inst.SSHDPid), "-m", "-u", "--"}, args...)...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	out, err := cmd.CombinedOutput()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		Fail(err.Error())
	}
	return result{out: string(out), code: code}
}

var _ = Describe("the backup job with the Director VM, and the scheduler job", Ordered, func() {
	var (
		root, keyDir         string
		jumpbox, waiting, vm model.Instance
		directorProperties   map[string]any // the backup job's, as rendered
	)

	renderBackup := func(boshDirector map[string]any) {
		renderJob(root, jumpbox, "jumpbox", "backup", map[string]any{"director": directorProperties, "deployments": []any{"waiting"}, "bosh_director": boshDirector})
	}
	lastRun := func() report.Run {
		var run report.Run
		raw, err := os.ReadFile(filepath.Join(jumpbox.Root, "store", "bbr", "artifacts", ".reports", "last-run.json"))
		if err == nil {
			_ = json.Unmarshal(raw, &run)
		}
		return run
	}
	schedulerLog := func() string {
		raw, _ := os.ReadFile(filepath.Join(jumpbox.Root, "sys", "log", "scheduler", "scheduler.log"))
		return string(raw)
	}
	goOn := func(yes bool) {
		path := filepath.Join(waiting.Root, "store", "go-on")
		if yes {
			Expect(os.WriteFile(path, nil, 0o644)).To(Succeed())
		} else {
			Expect(os.RemoveAll(path)).To(Succeed())
		}
	}
	ctl := func(action string) result {
		return inInstance(jumpbox, "/var/vcap/jobs/scheduler/bin/ctl", action)
	}

	BeforeAll(func() {
		if boshBin == "" {
			Skip("BBR_TEST_BIN is not set: scripts/test builds the bosh CLI there")
		}
		var err error
		root, err = filepath.Abs(filepath.Join("..", "..", ".."))
		Expect(err).NotTo(HaveOccurred())
		vars := jumpboxVars(map[string]any{"deployments": []string{"waiting"}, "backup_schedule": "@every 1s", "backup_time_zone": "Europe/Berlin"})
		// @every 1s is below the scheduler's 15m floor: min_interval lowers it.
		fast := filepath.Join(GinkgoT().TempDir(), "fast-schedule.yml")
		Expect(os.WriteFile(fast, []byte("- type: replace\n  path: /instance_groups/name=jumpbox/jobs/name=scheduler/properties/min_interval?\n  value: 1s\n"), 0o644)).To(Succeed())
		labUp("basic", writeDirectorDeployment(), writeWaitingDeployment(), writeJumpboxDeployment(root, vars, "schedule", fast))
		jumpbox, waiting, vm = instance("jumpbox", "jumpbox", 0), instance("waiting", "worker", 0), instance("bosh", "bosh", 0)
		Expect(os.MkdirAll(filepath.Join(vm.Root, "store", "director"), 0o755)).To(Succeed())
		Expect(os.MkdirAll(filepath.Join(vm.Root, "store", "blobstore"), 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(vm.Root, "store", "director", "db"), []byte("director database"), 0o600)).To(Succeed())
		keyDir = GinkgoT().TempDir()
		run(labBin, "operator-key", "--dir", labDir, "bosh", "bosh/0", keyDir).expectSuccess()
		directorProperties = renderedDirector(jumpbox)
		DeferCleanup(func() { ctl("stop") })
	})

	AfterEach(func() {
		Expect(labUsers()).To(Equal([]string{"jumpbox"}), "every SSH user bbr asked for is removed; the operator's stays")
		Expect(stagingLeft("waiting")).To(BeEmpty())
		Expect(stagingLeft("bosh")).To(BeEmpty())
	})

	boshDirector := func(hostKeys string) map[string]any {
		return map[string]any{"host": vm.IP, "ssh_user": "jumpbox", "private_key": string(must(os.ReadFile(filepath.Join(keyDir, "id_ed25519")))), "host_keys": hostKeys}
	}

	It("backs up the Director VM after the deployments, pinned to its host key, into its host's folder", func() {
		renderBackup(boshDirector(string(must(os.ReadFile(filepath.Join(keyDir, "known_hosts"))))))
		goOn(true)
		r := run(labBin, "run-errand", "--dir", labDir, "jumpbox", "backup").expectSuccess()
		Expect(r.out).To(ContainSubstring("Backing up the BOSH Director " + vm.IP))
		Expect(r.out).To(MatchRegexp(`waiting\s+ok\s+`))
		Expect(r.out).To(MatchRegexp(strings.ReplaceAll(vm.IP, ".", `\.`) + `\s+ok\s+`))
		backups, _ := filepath.Glob(filepath.Join(jumpbox.Root, "store", "bbr", "artifacts", vm.IP, vm.IP+"_*Z"))
		Expect(backups).To(HaveLen(1))
		a, err := artifact.Open(backups[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(filepath.Join(backups[0], "bosh-0-director.tar")).To(BeARegularFile())
		Expect(artifact.Verify(context.Background(), a)).To(Succeed())
		run := lastRun()
		Expect(run.Deployments).To(HaveLen(2))
		Expect(run.Deployments[1]).To(And(HaveField("Kind", report.KindDirector), HaveField("Name", vm.IP), HaveField("OK", true)))
	})

	It("refuses a Director VM that shows another host key, and still backs up the deployments", func() {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		other, err := ssh.NewPublicKey(pub)
		Expect(err).NotTo(HaveOccurred())
		renderBackup(boshDirector(string(ssh.MarshalAuthorizedKey(other))))
		r := run(labBin, "run-errand", "--dir", labDir, "jumpbox", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.out).To(MatchRegexp(`waiting\s+ok\s+`))
		Expect(r.out).To(ContainSubstring("host key mismatch"))
		Expect(r.out).To(ContainSubstring("but bosh_director.host_keys lists ssh-ed25519 " + ssh.FingerprintSHA256(other)))
		renderBackup(boshDirector(string(must(os.ReadFile(filepath.Join(keyDir, "known_hosts"))))))
	})

	It("stops cleanly on monit stop in the middle of a scheduled backup: unlocked, nothing staged, no user left", func() {
		goOn(false)
		locks, unlocks := waitingLines("locked"), waitingLines("unlocked")
		earlier := lastRun().Started
		Expect(ctl("start").code).To(Equal(0))
		Eventually(func() int { return waitingLines("locked") }, "60s", "100ms").Should(Equal(locks+1), "the scheduled backup is in its backup step")
		r := ctl("stop")
		Expect(r.code).To(Equal(0), r.out)
		Expect(waitingLines("unlocked")).To(Equal(unlocks+1), "unlocked before the scheduler exited")
		Expect(filepath.Join(jumpbox.Root, "sys", "run", "scheduler", "scheduler.pid")).NotTo(BeAnExistingFile())
		Expect(schedulerLog()).To(MatchRegexp(`\] scheduler: started: the backup job's config /var/vcap/jobs/backup/config/config.yml, on "@every 1s" in Europe/Berlin\n`))
		Expect(schedulerLog()).To(HaveSuffix("scheduler: stopped\n"))
		Expect(lastRun().Started).To(BeTemporally(">", earlier), "the stopped run's own report")
		Expect(lastRun().OK).To(BeFalse(), "the stopped run is reported as failed")
	})

	It("runs the backup on its schedule, with the Director, and reports it", func() {
		goOn(true)
		stopped := lastRun().Started
		Expect(ctl("start").code).To(Equal(0))
		Eventually(func() bool { r := lastRun(); return r.OK && r.Started.After(stopped) }, "60s", "100ms").Should(BeTrue())
		Expect(ctl("stop").code).To(Equal(0))
		run := lastRun()
		Expect(run.Deployments).To(ConsistOf(HaveField("Name", "waiting"), HaveField("Name", vm.IP)))
		Expect(schedulerLog()).To(MatchRegexp(`the run scheduled at \S+ \S+ CES?T succeeded`))
	})

	It("says a hung scheduled run missed its next time while it goes on, and stops it at run_timeout: unlocked, reported failed with the reason", func() {
		renderJob(root, jumpbox, "jumpbox", "scheduler", map[string]any{"schedule": "@every 1s", "time_zone": "Europe/Berlin", "min_interval": "1s", "run_timeout": "5s"})
		goOn(false)
		locks, unlocks := waitingLines("locked"), waitingLines("unlocked")
		Expect(ctl("start").code).To(Equal(0))
		Eventually(func() int { return waitingLines("locked") }, "60s", "100ms").Should(BeNumerically(">", locks), "the scheduled backup is in its backup step")
		Eventually(func() int { return waitingLines("unlocked") }, "60s", "100ms").Should(BeNumerically(">", unlocks), "unlocked by run_timeout, no monit stop")
		Eventually(schedulerLog, "60s", "100ms").Should(MatchRegexp(`scheduler: the run scheduled at \S+ \S+ CES?T was stopped at its run_timeout \(5s\): `))
		Expect(ctl("stop").code).To(Equal(0))
		log := schedulerLog()
		still := regexp.MustCompile(`scheduler: missed the run scheduled at \S+ \S+ CES?T: the run scheduled at \S+ \S+ CES?T is still going\n`).FindStringIndex(log)
		Expect(still).NotTo(BeNil(), "a time the hung run overran is said while it goes on")
		Expect(still[0]).To(BeNumerically("<", strings.Index(log, "was stopped at its run_timeout")))
		// The next run (stopped by ctl stop) wrote last-run.json since:
		// the timed-out run's own report says why it failed.
		reports, _ := filepath.Glob(filepath.Join(jumpbox.Root, "store", "bbr", "artifacts", ".reports", "backup-*.json"))
		timedOut := 0
		for _, r := range reports {
			var run report.Run
			Expect(json.Unmarshal(must(os.ReadFile(r)), &run)).To(Succeed())
			if raw := string(must(os.ReadFile(r))); strings.Contains(raw, "the scheduler stopped the run at its run_timeout (5s)") {
				Expect(run.OK).To(BeFalse())
				timedOut++
			}
		}
		Expect(timedOut).To(BeNumerically(">=", 1))
		Expect(waitingLines("locked")).To(Equal(waitingLines("unlocked")), "every lock undone")
	})
})
