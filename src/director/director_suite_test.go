package director_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestDirector(t *testing.T) {
	RegisterFailHandler(Fail)
	// A state these specs wait for is a TLS round trip away; Gomega's 1 s
	// default is short for that on a busy 2-core CI machine.
	SetDefaultEventuallyTimeout(30 * time.Second)
	RunSpecs(t, "Director Suite")
}
