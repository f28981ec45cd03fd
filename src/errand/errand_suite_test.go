package errand_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestErrand(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Errand Suite")
}
