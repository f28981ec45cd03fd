package artifact_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

var _ = Describe("sizes in the metadata", func() {
	encoded := func(size, plain int64) []byte {
		return fmt.Appendf(nil, "instances:\n- name: db\n  index: \"0\"\n  artifacts:\n  - name: pg\n    checksums: {}\n"+
			"backup_activity: {start_time: 2026/01/02 03:04:05 UTC}\nencodings:\n"+
			"  db-0-pg.tar: {transforms: [zstd], size: %d, crc64nvme: cdcdcdcdcdcdcdcd, plain_size: %d}\n", size, plain)
	}

	It("refuses a size no file can have, saying which, before anything computes with it", func() {
		// The metadata that made validate, restore and export panic.
		_, err := artifact.ParseMetadata(encoded(10, 9223372036854775807))
		Expect(err).To(MatchError(And(ContainSubstring("db-0-pg.tar"), ContainSubstring("plain size 9223372036854775807"),
			ContainSubstring("larger than bbr can store"))))
		_, err = artifact.ParseMetadata(encoded(artifact.MaxFileSize+1, 10))
		Expect(err).To(MatchError(ContainSubstring("stored size")))
		_, err = artifact.ParseMetadata(encoded(artifact.MaxFileSize, artifact.MaxFileSize))
		Expect(err).NotTo(HaveOccurred(), "the bound itself is a size")
	})
})
