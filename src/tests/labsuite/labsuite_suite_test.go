// Package labsuite_test runs the real bbr binary against the lab: real
// sshd instances, real Redis and PostgreSQL, the lab's Director API. It
// needs root (scripts/test runs it so).
package labsuite_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/bbr-release/bbr/src/lab/model"
)

func TestLabsuite(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(30 * time.Second)
	RunSpecs(t, "Lab Suite")
}

// The suite's lab uses its own addresses and ports, so it can run while a
// demo lab is up.
const (
	directorAddress = "127.0.0.1:25610"
	uaaAddress      = "127.0.0.1:8610"
	subnet          = "127.78"
)

var (
	bbrBin, labBin, boshBin string
	labDir                  string
	lab                     model.Lab
)

var _ = BeforeSuite(func() {
	if os.Geteuid() != 0 {
		Skip("the lab suite needs root (it starts sshd in mount namespaces and creates users): run scripts/test, or go test as root")
	}
	var err error
	bbrBin, err = gexec.Build("github.com/bbr-release/bbr/src/cmd/bbr", "-ldflags", "-X main.version=9.9.9-lab")
	Expect(err).NotTo(HaveOccurred())
	labBin, err = gexec.Build("github.com/bbr-release/bbr/src/cmd/bbr-lab")
	Expect(err).NotTo(HaveOccurred())
	if bin := os.Getenv("BBR_TEST_BIN"); bin != "" {
		boshBin = filepath.Join(bin, "bosh")
	}
	DeferCleanup(gexec.CleanupBuildArtifacts)
})

// labUp starts a lab with the sample deployment (or the given deployment
// directories) and takes it down after the current container.
func labUp(auth string, deploymentDirs ...string) {
	labDir = GinkgoT().TempDir()
	args := append([]string{"up", "--dir", labDir, "--director-address", directorAddress,
		"--uaa-address", uaaAddress, "--subnet", subnet, "--auth", auth}, deploymentDirs...)
	run(labBin, args...).expectSuccess()
	DeferCleanup(func() {
		run(labBin, "down", "--dir", labDir).expectSuccess()
	})
	var err error
	lab, err = model.Load(labDir)
	Expect(err).NotTo(HaveOccurred())
}

type result struct {
	out, err string
	code     int
}

func (r result) expectSuccess() result {
	ExpectWithOffset(1, r.code).To(Equal(0), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
	return r
}

func run(bin string, args ...string) result {
	return runIn("", nil, bin, args...)
}

func runIn(dir string, env []string, bin string, args ...string) result {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	EventuallyWithOffset(2, session, 15*time.Minute).Should(gexec.Exit()) // a first deploy compiles the release
	return result{out: string(session.Out.Contents()), err: string(session.Err.Contents()), code: session.ExitCode()}
}
