package artifact_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
)

// panicking is a good backup whose file fails reading with a panic, as a
// size overflow in a decoder once did.
type panicking struct {
	artifact.Source
	file string
}

func (p panicking) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	r, err := p.Source.Open(ctx, file)
	if err != nil || file != p.file {
		return r, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(r, 512), panicReader{}), r}, nil
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("a decoder's bug") }

var _ = Describe("copies and exports", func() {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	source := func() (artifact.Source, string) {
		local := artifact.Local{Dir: GinkgoT().TempDir()}
		name := artifact.BackupName("cf", t0)
		w, err := local.Create(ctx, name, t0)
		Expect(err).NotTo(HaveOccurred())
		for i, file := range []string{"db-0-pg.tar", "db-1-pg.tar"} {
			tarball := destinationtest.MakeTar(map[string][]byte{"./data": bytes.Repeat([]byte(file), 1000)})
			sums, _, err := w.WriteTar(file, bytes.NewReader(tarball))
			Expect(err).NotTo(HaveOccurred())
			Expect(w.AddInstanceArtifact("db", i, "pg", sums)).To(Succeed())
		}
		Expect(w.Finish(t0.Add(time.Minute), nil)).To(Succeed())
		src, err := local.Open(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		return src, name
	}

	for _, how := range []struct {
		name string
		copy func(context.Context, artifact.Source, string, artifact.Destination) (string, error)
	}{{"export", artifact.Export}, {"copy", artifact.Copy}} {
		It("never names a half-written "+how.name+" good when reading panics", func() {
			src, name := source()
			dst := artifact.Local{Dir: GinkgoT().TempDir()}
			Expect(func() { _, _ = how.copy(ctx, panicking{src, "db-1-pg.tar"}, name, dst) }).To(PanicWith("a decoder's bug"))
			all, err := dst.List(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(all).To(ConsistOf(And(HaveField("Name", name+artifact.FailedSuffix), HaveField("State", artifact.Failed))))
			_, err = dst.Open(ctx, name)
			Expect(err).To(MatchError(ContainSubstring("failed backup")))
		})
	}
})

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
