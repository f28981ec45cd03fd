package labsuite_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/bbr-release/bbr/src/lab/model"
)

// bbrEnv is the environment an operator would export for the lab.
func bbrEnv(deployment string) []string {
	return []string{
		"BOSH_ENVIRONMENT=https://" + lab.Director.Address,
		"BOSH_CLIENT=" + lab.Director.Client,
		"BOSH_CLIENT_SECRET=" + lab.Director.ClientSecret,
		"BOSH_CA_CERT=" + lab.Director.CACertPath,
		"BOSH_DEPLOYMENT=" + deployment,
	}
}

// bbr runs the bbr binary in dir with the lab's environment.
func bbr(dir, deployment string, args ...string) result {
	return runIn(dir, bbrEnv(deployment), bbrBin, args...)
}

// bbrStart starts the bbr binary in the background in a new directory,
// killed at the end of the spec if it still runs.
func bbrStart(deployment string, args ...string) (*gexec.Session, string) {
	cmd := exec.Command(bbrBin, args...)
	cmd.Dir = GinkgoT().TempDir()
	cmd.Env = append(os.Environ(), bbrEnv(deployment)...)
	session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	DeferCleanup(session.Kill)
	return session, cmd.Dir
}

func instance(deployment, group string, index int) model.Instance {
	d, ok := lab.Find(deployment)
	ExpectWithOffset(1, ok).To(BeTrue(), "no deployment %s in the lab", deployment)
	for _, i := range d.Instances {
		if i.Group == group && i.Index == index {
			return i
		}
	}
	Fail(fmt.Sprintf("no instance %s/%d", group, index))
	return model.Instance{}
}

// sh runs a shell command on the host and returns its trimmed output.
func sh(script string) string {
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s: %s", script, out)
	return strings.TrimSpace(string(out))
}

func redis(inst model.Instance, args string) string {
	return sh(fmt.Sprintf("redis-cli -h %s -p 6379 %s", inst.IP, args))
}

func psql(inst model.Instance, query string) string {
	return sh(fmt.Sprintf("psql -h %s -U postgres -d demo -tAq -c %q", inst.IP, query))
}

// jobLog is what the sample jobs' scripts appended to their bbr.log.
func jobLog(inst model.Instance, job string) string {
	raw, err := os.ReadFile(filepath.Join(inst.Root, "sys", "log", job, "bbr.log"))
	if os.IsNotExist(err) {
		return ""
	}
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return string(raw)
}

// labUsers lists the users the lab made that still exist.
func labUsers() []string {
	raw, err := os.ReadFile("/etc/passwd")
	Expect(err).NotTo(HaveOccurred())
	var users []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 4 && f[4] == "bbr-lab" {
			users = append(users, f[0])
		}
	}
	return users
}

// stagingLeft lists instances that still have the remote staging dir.
func stagingLeft(deployment string) []string {
	d, _ := lab.Find(deployment)
	var left []string
	for _, i := range d.Instances {
		if _, err := os.Stat(filepath.Join(i.Root, "store", "bbr-backup")); err == nil {
			left = append(left, i.Slug())
		}
	}
	return left
}

func onlyDir(parent string) string {
	entries, err := os.ReadDir(parent)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(parent, e.Name()))
		}
	}
	ExpectWithOffset(1, dirs).To(HaveLen(1))
	return dirs[0]
}

// awaitNextSecond returns once the clock has reached a new second:
// backups are named to the second, as upstream's, so two backups of one
// deployment in one second would share a name.
func awaitNextSecond() {
	second := func() time.Time { return time.Now().Truncate(time.Second) }
	EventuallyWithOffset(1, second).Should(BeTemporally(">", second()))
}

func must[T any](v T, err error) T {
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return v
}
