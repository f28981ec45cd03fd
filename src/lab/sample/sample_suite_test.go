package sample_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestSample(t *testing.T) {
	RegisterFailHandler(Fail)
	// What these specs wait for (a process, a server, a poll) can take
	// seconds on a busy 2-core CI machine; Gomega's default is 1 s.
	SetDefaultEventuallyTimeout(30 * time.Second)
	RunSpecs(t, "Lab sample Suite")
}
