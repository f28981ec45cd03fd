package labsuite_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("a staging directory left by an earlier run", Ordered, func() {
	BeforeAll(func() { labUp("basic") })

	It("makes backup refuse and advise backup-cleanup, which clears it", func() {
		api := instance("sample", "api", 0)
		leftover := filepath.Join(instance("sample", "redis", 1).Root, "store", "bbr-backup", "redis")
		Expect(os.MkdirAll(leftover, 0o755)).To(Succeed())
		work := GinkgoT().TempDir()

		r := bbr(work, "sample", "deployment", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("/var/vcap/store/bbr-backup already exists on instance redis/"))
		Expect(r.err).To(ContainSubstring("bbr backup-cleanup"))
		Expect(jobLog(api, "api")).NotTo(ContainSubstring("locked"), "nothing is locked")

		r = bbr(work, "sample", "deployment", "backup-cleanup").expectSuccess()
		Expect(r.out).To(ContainSubstring("'sample' cleaned up"))
		Expect(stagingLeft("sample")).To(BeEmpty())
		Expect(jobLog(api, "api")).To(ContainSubstring("after_success=false"))

		bbr(GinkgoT().TempDir(), "sample", "deployment", "backup").expectSuccess()
		Expect(labUsers()).To(BeEmpty())
	})

	It("restore-cleanup runs the restore unlocks", func() {
		bbr(GinkgoT().TempDir(), "sample", "deployment", "restore-cleanup").expectSuccess()
		Expect(jobLog(instance("sample", "api", 0), "api")).To(ContainSubstring("script=post-restore-unlock"))
		Expect(labUsers()).To(BeEmpty())
	})
})
