package labdir_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestLabdir(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Lab directory Suite")
}
