package labctl_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestLabctl(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "bbr-lab commands Suite")
}
