package instance_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/instance"
)

// TestMain lets the test binary play bbr-lab's hidden instance-init
// command: Start re-executes Spec.LabBin, which here is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "instance-init" && os.Args[2] == "--spec" {
		err := instance.Init(os.Args[3])
		fmt.Fprintf(os.Stderr, "instance-init: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// Start creates the host's /var/vcap mount point; leave the machine as
// the suite found it.
var _ = SynchronizedBeforeSuite(func() []byte {
	if _, err := os.Stat("/var/vcap"); err != nil && os.Geteuid() == 0 {
		DeferCleanup(func() { _ = os.Remove("/var/vcap") })
	}
	return nil
}, func([]byte) {})

func TestInstance(t *testing.T) {
	RegisterFailHandler(Fail)
	// What these specs wait for (a process, a server, a poll) can take
	// seconds on a busy 2-core CI machine; Gomega's default is 1 s.
	SetDefaultEventuallyTimeout(30 * time.Second)
	RunSpecs(t, "Lab instance Suite")
}
