package jobtemplates_test

import (
	"os/exec"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestJobTemplates(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Job templates Suite")
}

var _ = BeforeSuite(func() {
	if _, err := exec.LookPath("ruby"); err != nil {
		Fail("ruby is needed to render ERB templates as the Director does (apt-get install ruby)")
	}
})
