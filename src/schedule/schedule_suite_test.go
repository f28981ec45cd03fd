package schedule_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestSchedule(t *testing.T) {
	RegisterFailHandler(Fail)
	// The specs wait for the scheduler's goroutines, never for time: a
	// busy machine only makes them slower.
	SetDefaultEventuallyTimeout(30 * time.Second)
	RunSpecs(t, "Schedule Suite")
}
