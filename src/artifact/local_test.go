package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
)

var _ = Describe("Local, what it lists and opens", func() {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var local artifact.Local

	// good writes a good backup of cf with two tars and returns its path.
	good := func() string {
		w, err := local.Create(ctx, artifact.BackupName("cf", t0), t0)
		Expect(err).NotTo(HaveOccurred())
		Expect(w.SaveManifest("name: cf\n")).To(Succeed())
		for i, file := range []string{"db-0-pg.tar", "db-1-pg.tar"} {
			sums, _, err := w.WriteTar(file, bytes.NewReader(destinationtest.MakeTar(map[string][]byte{"./data": []byte(file)})))
			Expect(err).NotTo(HaveOccurred())
			Expect(w.AddInstanceArtifact("db", i, "pg", sums)).To(Succeed())
		}
		Expect(w.Finish(t0.Add(time.Minute), nil)).To(Succeed())
		return w.Location()
	}
	state := func() artifact.Stored {
		all, err := local.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		return all[0]
	}
	validate := func(path string) artifact.Validation {
		src, err := artifact.Open(path)
		Expect(err).NotTo(HaveOccurred())
		v, err := artifact.Validate(ctx, src, artifact.ValidateOptions{})
		Expect(err).NotTo(HaveOccurred())
		return v
	}

	BeforeEach(func() { local = artifact.Local{Dir: GinkgoT().TempDir()} })

	It("lists a backup whose tars are gone as failed, naming them", func() {
		path := good()
		Expect(state().State).To(Equal(artifact.Good))
		for _, file := range []string{"db-0-pg.tar", "db-1-pg.tar"} {
			Expect(os.Remove(filepath.Join(path, file))).To(Succeed())
		}
		b := state()
		Expect(b.State).To(Equal(artifact.Failed))
		Expect(b.Why).To(MatchError(ContainSubstring("its metadata names files it lacks: db-0-pg.tar (missing), db-1-pg.tar (missing)")))
	})

	It("lists a backup whose metadata is gone, as a half-deleted one is, as in progress (upstream writes it last)", func() {
		path := good()
		Expect(os.Remove(filepath.Join(path, artifact.MetadataFile))).To(Succeed())
		Expect(state()).To(And(HaveField("State", artifact.InProgress), HaveField("Why", MatchError(ContainSubstring("no metadata file")))))
	})

	It("removes the metadata first when deleting, so that a delete cut short never leaves a backup that looks good", func() {
		path := good()
		var metadataThere []bool
		restore := artifact.SetRemoveAll(func(dir string) error {
			_, err := os.Lstat(filepath.Join(path, artifact.MetadataFile))
			metadataThere = append(metadataThere, err == nil)
			Expect(os.Remove(filepath.Join(path, "db-0-pg.tar"))).To(Succeed())
			return errors.New("the machine went down")
		})
		defer restore()
		Expect(local.Delete(ctx, filepath.Base(path))).To(MatchError(ContainSubstring("the machine went down")))
		Expect(metadataThere).To(Equal([]bool{false}))
		Expect(state().State).To(Equal(artifact.InProgress), "never good")
	})

	It("refuses a stored file that is a symbolic link, at once and saying so", func() {
		path := good()
		Expect(os.Remove(filepath.Join(path, "db-0-pg.tar"))).To(Succeed())
		Expect(os.Symlink("/dev/zero", filepath.Join(path, "db-0-pg.tar"))).To(Succeed())
		Expect(state()).To(And(HaveField("State", artifact.Failed),
			HaveField("Why", MatchError(ContainSubstring("db-0-pg.tar (not a regular file)")))))

		done := make(chan artifact.Validation, 1)
		go func() {
			defer GinkgoRecover()
			done <- validate(path)
		}()
		var v artifact.Validation
		Eventually(done, 10*time.Second).Should(Receive(&v), "reading /dev/zero never ends")
		Expect(v.Bad()).To(ConsistOf("db-0-pg.tar: db-0-pg.tar is not a regular file (symlink): a backup holds only regular files"))
	})

	It("refuses a stored file that is a FIFO, without blocking on it", func() {
		path := good()
		Expect(os.Remove(filepath.Join(path, "db-1-pg.tar"))).To(Succeed())
		Expect(syscall.Mkfifo(filepath.Join(path, "db-1-pg.tar"), 0o600)).To(Succeed())
		done := make(chan artifact.Validation, 1)
		go func() {
			defer GinkgoRecover()
			done <- validate(path)
		}()
		var v artifact.Validation
		Eventually(done, 10*time.Second).Should(Receive(&v), "opening a FIFO blocks until a writer comes")
		Expect(v.Bad()).To(ConsistOf(ContainSubstring("db-1-pg.tar is not a regular file (named pipe)")))
	})

	It("refuses metadata that is a symbolic link", func() {
		path := good()
		meta := filepath.Join(path, artifact.MetadataFile)
		Expect(os.Rename(meta, meta+".real")).To(Succeed())
		Expect(os.Symlink(meta+".real", meta)).To(Succeed())
		_, err := artifact.Open(path)
		Expect(err).To(MatchError(ContainSubstring("metadata is not a regular file")))
	})

	It("fails validate for a tar that lost an entry the metadata lists", func() {
		path := good()
		Expect(os.WriteFile(filepath.Join(path, "db-0-pg.tar"), destinationtest.MakeTar(nil), 0o600)).To(Succeed())
		Expect(validate(path).Bad()).To(ConsistOf("db-0-pg.tar: checksums don't match for db-0-pg.tar: [./data]"))
	})
})
