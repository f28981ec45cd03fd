package cli

import (
	"bytes"

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

	It("warns about --password on the command line it was given, before any other check", func() {
		var out, errOut bytes.Buffer
		code := Run("1.0.0", []string{"bbr", "deployment", "--password", "s", "pre-backup-check"}, Streams{Out: &out, Err: &errOut})
		Expect(code).To(Equal(1), "flags are missing")
		Expect(errOut.String()).To(ContainSubstring("Warning: --password on the command line is visible"))
		errOut.Reset()
		Run("1.0.0", []string{"bbr", "deployment", "pre-backup-check"}, Streams{Out: &out, Err: &errOut})
		Expect(errOut.String()).NotTo(ContainSubstring("Warning: --password"))
	})

	DescribeTable("exits 1 on a command it does not know, so that a typo in a pipeline fails",
		func(args ...string) {
			var out, errOut bytes.Buffer
			Expect(Run("1.0.0", append([]string{"bbr"}, args...), Streams{Out: &out, Err: &errOut})).To(Equal(1))
			Expect(out.String()).To(ContainSubstring("Error command 'valdate' not found"))
		},
		Entry("top level", "valdate"),
		Entry("under deployment", "deployment", "-t", "https://127.0.0.1:1", "-u", "a", "-p", "b", "-d", "d", "valdate"),
	)

	It("still exits 0 for help and version", func() {
		var out bytes.Buffer
		Expect(Run("1.0.0", []string{"bbr", "help"}, Streams{Out: &out, Err: &out})).To(Equal(0))
		Expect(Run("1.0.0", []string{"bbr", "version"}, Streams{Out: &out, Err: &out})).To(Equal(0))
	})
})
