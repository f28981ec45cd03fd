package main

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestBBRLab(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "bbr-lab Suite")
}
