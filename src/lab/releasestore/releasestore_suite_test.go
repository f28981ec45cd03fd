package releasestore_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestReleasestore(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Release store Suite")
}
