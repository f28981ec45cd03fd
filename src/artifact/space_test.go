package artifact_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

var _ = Describe("the free-space check before locking", func() {
	var parent string

	backup := func(name string, size int64) {
		dir := filepath.Join(parent, name)
		Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
		// Sparse: the apparent size counts, no disk is used.
		f, err := os.Create(filepath.Join(dir, "g-0-j.tar"))
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Truncate(size)).To(Succeed())
		Expect(f.Close()).To(Succeed())
	}

	BeforeEach(func() { parent = GinkgoT().TempDir() })

	It("estimates from the newest good backup of that deployment only", func() {
		backup("dep_20261124T000000Z", 100)
		backup("dep_20261125T000000Z", 300)
		backup("dep_20261126T000000Z.failed", 1<<40)
		backup("dep_20261127T000000Z.in-progress", 1<<40)
		backup("dep2_20261128T000000Z", 1<<40)
		size, path, err := artifact.LastBackupSize(parent, "dep")
		Expect(err).NotTo(HaveOccurred())
		Expect(path).To(HaveSuffix("dep_20261125T000000Z"))
		Expect(size).To(Equal(int64(300)))
	})

	It("refuses when the last backup would not fit, saying how to go on", func() {
		backup("dep_20261125T000000Z", 1<<43) // 8 TiB: more than this machine has
		skipped, err := artifact.CheckSpace(parent, "dep")
		Expect(skipped).To(BeEmpty())
		Expect(err).To(MatchError(MatchRegexp(`the backup of dep needs about \S+ \(its last backup here, dep_20261125T000000Z, plus a tenth\), but .* has \S+ free: free space or choose another destination, or skip this check \(bbr: --skip-space-check\)`)))
	})

	It("passes when it fits, and makes no estimate without an earlier backup", func() {
		backup("dep_20261125T000000Z", 10)
		Expect(artifact.CheckSpace(parent, "dep")).To(BeEmpty())
		Expect(artifact.CheckSpace(parent, "other")).To(ContainSubstring("no earlier backup of other"))
	})
})
