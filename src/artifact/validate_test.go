package artifact_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
)

var _ = Describe("Validate", func() {
	var dir string
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	tarOf := func(name, content string) []byte {
		return destinationtest.MakeTar(map[string][]byte{name: []byte(content)})
	}
	// backup writes a good backup of cf with two tars and returns its path.
	backup := func() string {
		w, err := artifact.Local{Dir: dir}.Create(ctx, artifact.BackupName("cf", t0), t0)
		Expect(err).NotTo(HaveOccurred())
		for i, content := range []string{"alpha", "beta"} {
			sums, _, err := w.WriteTar(artifact.InstanceFileName("db", string(rune('0'+i)), "pg"), bytes.NewReader(tarOf("./data", content)))
			Expect(err).NotTo(HaveOccurred())
			Expect(w.AddInstanceArtifact("db", i, "pg", sums)).To(Succeed())
		}
		Expect(w.RecordLockWindow(t0, t0.Add(1500*time.Millisecond))).To(Succeed())
		Expect(w.Finish(t0.Add(time.Minute), nil)).To(Succeed())
		return w.Location()
	}
	validate := func(path string, opts artifact.ValidateOptions) artifact.Validation {
		src, err := artifact.Open(path)
		Expect(err).NotTo(HaveOccurred())
		v, err := artifact.Validate(ctx, src, opts)
		Expect(err).NotTo(HaveOccurred())
		return v
	}
	problems := func(v artifact.Validation) map[string]string {
		out := map[string]string{}
		for _, f := range v.Files {
			if f.Problem != "" {
				out[f.Name] = f.Problem
			}
		}
		return out
	}

	BeforeEach(func() { dir = GinkgoT().TempDir() })

	It("passes a good backup and describes it", func() {
		v := validate(backup(), artifact.ValidateOptions{})
		Expect(v.OK()).To(BeTrue())
		Expect(v).To(And(HaveField("Deployment", "cf"), HaveField("LockWindow", 1500*time.Millisecond),
			HaveField("Instances", []string{"db/0 pg", "db/1 pg"})))
		Expect(v.Files).To(HaveLen(2))
		Expect(v.Files[0]).To(And(HaveField("Name", "db-0-pg.tar"), HaveField("Files", 1), HaveField("Size", BeNumerically(">", 0))))
	})

	It("names a tar that changed, one that is missing, and a file the metadata does not name", func() {
		path := backup()
		Expect(os.WriteFile(filepath.Join(path, "db-0-pg.tar"), tarOf("./data", "ALPHA"), 0o600)).To(Succeed())
		Expect(os.Remove(filepath.Join(path, "db-1-pg.tar"))).To(Succeed())
		Expect(os.WriteFile(filepath.Join(path, "stray.tar"), []byte("x"), 0o600)).To(Succeed())
		v := validate(path, artifact.ValidateOptions{})
		Expect(v.OK()).To(BeFalse())
		Expect(problems(v)).To(And(HaveLen(2),
			HaveKeyWithValue("db-0-pg.tar", ContainSubstring("checksums don't match for db-0-pg.tar")),
			HaveKeyWithValue("db-1-pg.tar", "missing: the metadata names it, the backup does not have it")))
		Expect(v.Problems).To(Equal([]string{"stray.tar is in the backup but not in its metadata"}))
	})

	It("refuses a tar restore would refuse, whatever its checksums say", func() {
		path := backup()
		Expect(os.WriteFile(filepath.Join(path, "db-0-pg.tar"), tarOf("../../etc/cron.d/x", "alpha"), 0o600)).To(Succeed())
		v := validate(path, artifact.ValidateOptions{})
		Expect(problems(v)).To(HaveKeyWithValue("db-0-pg.tar", ContainSubstring("../../etc/cron.d/x")))
	})

	It("fails a tar listed without checksums unless told to allow it", func() {
		path := backup()
		raw, err := os.ReadFile(filepath.Join(path, artifact.MetadataFile))
		Expect(err).NotTo(HaveOccurred())
		// The first job's checksums key, with nothing under it.
		stripped := regexp.MustCompile(`checksums:\n\s+\./data: [0-9a-f]{64}`).ReplaceAll(raw, []byte("checksums:"))
		Expect(stripped).NotTo(Equal(raw))
		Expect(os.WriteFile(filepath.Join(path, artifact.MetadataFile), stripped, 0o600)).To(Succeed())

		Expect(problems(validate(path, artifact.ValidateOptions{}))).To(HaveKeyWithValue("db-0-pg.tar", "the metadata has no checksums for db-0-pg.tar"))
		Expect(validate(path, artifact.ValidateOptions{AllowMissingChecksums: true}).OK()).To(BeTrue())
	})
})
