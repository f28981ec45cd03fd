package labsuite_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Bad input is refused with a message that says what to fix, before any
// Director is contacted (the target here does not exist).
var _ = Describe("bad input", func() {
	env := []string{"BOSH_ENVIRONMENT=https://127.0.0.1:1", "BOSH_CLIENT=admin", "BOSH_CLIENT_SECRET=secret", "BOSH_DEPLOYMENT=dep"}

	DescribeTable("is refused before anything is contacted",
		func(want string, args ...string) {
			dir := GinkgoT().TempDir()
			Expect(os.MkdirAll(filepath.Join(dir, "dep_20261125T000000Z.failed"), 0o700)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "dep_20261125T000000Z.failed", "FAILED"), []byte("This backup failed and is incomplete: do not restore it.\ndrain failed\n"), 0o600)).To(Succeed())
			r := runIn(dir, env, bbrBin, args...)
			Expect(r.code).To(Equal(1))
			Expect(r.err).To(ContainSubstring(want))
			Expect(r.err).NotTo(ContainSubstring("unreachable"))
		},
		Entry("a backup destination that does not exist", "artifact path /nonexistent is not a directory: create it, or pass an existing directory with --artifact-path",
			"deployment", "backup", "--artifact-path", "/nonexistent"),
		Entry("a restore from a directory that is not a backup", "is not a bbr backup: it has no metadata file",
			"deployment", "restore", "--artifact-path", "."),
		Entry("a restore from a failed backup", "is a failed backup and cannot be restored: drain failed",
			"deployment", "restore", "--artifact-path", "dep_20261125T000000Z.failed"),
		Entry("a deployment name BOSH would not make", `refusing deployment name "../x"`,
			"deployment", "--deployment", "../x", "backup"),
		Entry("parallelism out of range", "--parallelism must be between 1 and 1000, got 0.",
			"deployment", "--parallelism", "0", "backup"),
		Entry("both --deployment and --all-deployments", "provide one of '--deployment' or '--all-deployments' flags.",
			"deployment", "--all-deployments", "backup"),
		Entry("a CA certificate file that does not exist", "reading --ca-cert: open /nope: no such file or directory (give a path to a PEM file or the PEM itself)",
			"deployment", "--ca-cert", "/nope", "pre-backup-check"),
		Entry("a director private key that does not exist", "reading --private-key-path: open /nope",
			"director", "--host", "127.0.0.1:1", "--username", "jumpbox", "--private-key-path", "/nope", "pre-backup-check"),
	)
})
