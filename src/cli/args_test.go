package cli

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("reading the command line", func() {
	DescribeTable("passwordInArgs spots a secret given as an argument",
		func(args []string, want bool) { Expect(passwordInArgs(args)).To(Equal(want)) },
		Entry("--password", []string{"bbr", "deployment", "--password", "s"}, true),
		Entry("-p", []string{"bbr", "deployment", "-p", "s"}, true),
		Entry("--password=s", []string{"bbr", "deployment", "--password=s"}, true),
		Entry("env var only", []string{"bbr", "deployment", "-u", "admin"}, false),
		Entry("a value that looks like the flag", []string{"bbr", "deployment", "-d", "p"}, false),
		Entry("after --", []string{"bbr", "--", "--password"}, false),
	)

	DescribeTable("director mode names the artifact after the host, and dials host:port",
		func(host, name, addr string) {
			Expect(directorName(host)).To(Equal(name))
			Expect(directorAddress(host)).To(Equal(addr))
		},
		Entry("bare IP", "10.0.0.6", "10.0.0.6", "10.0.0.6:22"),
		Entry("IP and port", "10.0.0.6:2222", "10.0.0.6", "10.0.0.6:2222"),
		Entry("URL", "https://director.example.com:25555", "director.example.com", "director.example.com:25555"),
		Entry("URL without port", "ssh://director.example.com", "director.example.com", "director.example.com:22"),
		Entry("IPv6 literal", "[fd00::6]:22", "fd00::6", "[fd00::6]:22"),
		Entry("bare IPv6", "fd00::6", "fd00::6", "[fd00::6]:22"),
	)
})
