package jobtemplates_test

import (
	"os/exec"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestJobTemplates(t *testing.T) {
	RegisterFailHandler(Fail)
	// What these specs wait for (a process, a server, a poll) can take
	// seconds on a busy 2-core CI machine; Gomega's default is 1 s.
	SetDefaultEventuallyTimeout(30 * time.Second)
	RunSpecs(t, "Job templates Suite")
}

var _ = BeforeSuite(func() {
	if _, err := exec.LookPath("ruby"); err != nil {
		Fail("ruby is needed to render ERB templates as the Director does (apt-get install ruby)")
	}
})
