package artifact_test

import (
	"context"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

var _ = Describe("copying a backup", func() {
	It("fails, naming the limit, on a manifest over 64 MiB, and writes no truncated manifest", func() {
		ctx := context.Background()
		t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		src := artifact.Local{Dir: GinkgoT().TempDir()}
		w, err := src.Create(ctx, artifact.BackupName("dep", t), t)
		Expect(err).NotTo(HaveOccurred())
		Expect(w.SaveManifest("name: dep\n")).To(Succeed())
		Expect(w.Finish(t, nil)).To(Succeed())
		location := w.Location()
		// Sparse: one byte over the limit costs no disk.
		Expect(os.Truncate(filepath.Join(location, artifact.ManifestFile), 64<<20+1)).To(Succeed())

		stored, err := src.Open(ctx, filepath.Base(location))
		Expect(err).NotTo(HaveOccurred())
		copied, err := artifact.Copy(ctx, stored, filepath.Base(location), artifact.Local{Dir: GinkgoT().TempDir()})
		Expect(err).To(MatchError(ContainSubstring("manifest.yml is larger than 64 MiB")))
		Expect(copied).To(HaveSuffix(artifact.FailedSuffix))
		Expect(filepath.Join(copied, artifact.ManifestFile)).NotTo(BeAnExistingFile())
	})
})
