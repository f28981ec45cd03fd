package lockorder_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestLockorder(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Lockorder Suite")
}
