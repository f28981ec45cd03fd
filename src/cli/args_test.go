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

	It("still exits 0 for version", func() {
		var out bytes.Buffer
		Expect(Run("1.0.0", []string{"bbr", "version"}, Streams{Out: &out, Err: &out})).To(Equal(0))
		Expect(out.String()).To(ContainSubstring("bbr version 1.0.0"))
	})

	// Help is asked for, not a usage error: it exits 0 and shows the help of
	// the command named, whatever credentials the environment lacks.
	DescribeTable("shows help and exits 0, however it is asked for",
		func(want string, args ...string) {
			for _, k := range []string{"BOSH_ENVIRONMENT", "BOSH_CLIENT", "BOSH_CLIENT_SECRET", "BOSH_DEPLOYMENT", "BOSH_CA_CERT", "CA_CERT"} {
				GinkgoT().Setenv(k, "")
			}
			var out, errOut bytes.Buffer
			Expect(Run("1.0.0", append([]string{"bbr"}, args...), Streams{Out: &out, Err: &errOut})).To(Equal(0), out.String()+errOut.String())
			Expect(out.String()).To(ContainSubstring(want))
			Expect(out.String() + errOut.String()).NotTo(Or(ContainSubstring("Incorrect Usage"), ContainSubstring("required"), ContainSubstring("provide one of")))
		},
		Entry("bbr help", "bbr - BOSH Backup and Restore", "help"),
		Entry("bbr h", "bbr - BOSH Backup and Restore", "h"),
		Entry("bbr --help", "bbr - BOSH Backup and Restore", "--help"),
		Entry("bbr -h", "bbr - BOSH Backup and Restore", "-h"),
		Entry("bbr help deployment", "deployment - Backup BOSH deployments", "help", "deployment"),
		Entry("bbr deployment --help", "bbr deployment - Backup BOSH deployments", "deployment", "--help"),
		Entry("bbr deployment -h", "bbr deployment - Backup BOSH deployments", "deployment", "-h"),
		Entry("bbr deployment help", "bbr deployment - Backup BOSH deployments", "deployment", "help"),
		Entry("bbr deployment help backup", "bbr deployment backup - Backup a deployment", "deployment", "help", "backup"),
		Entry("bbr deployment backup --help", "bbr deployment backup - Backup a deployment", "deployment", "backup", "--help"),
		Entry("bbr deployment -d cf restore -h", "bbr deployment restore - Restore a deployment", "deployment", "-d", "cf", "restore", "-h"),
		Entry("bbr director --help", "bbr director - Backup BOSH director", "director", "--help"),
		Entry("bbr director help", "bbr director - Backup BOSH director", "director", "help"),
		Entry("bbr director backup --help", "bbr director backup - Backup a BOSH Director", "director", "backup", "--help"),
		Entry("bbr validate --help", "validate - Check a backup", "validate", "--help"),
		Entry("bbr export -h", "export - ", "export", "-h"),
	)
})
