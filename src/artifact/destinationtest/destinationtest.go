// Package destinationtest is the conformance suite every
// artifact.Destination passes (restic's backend tests are the model): the
// local directory and the bucket run the same specs, so the orchestrator,
// retention and the errands can rely on one behaviour.
package destinationtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

// Harness is what the suite needs of an implementation.
type Harness struct {
	// New returns an empty destination, new for each spec.
	New func() artifact.Destination
	// Corrupt replaces a stored file's content behind the destination's back.
	Corrupt func(dest artifact.Destination, backup, file string, content []byte)
	// Leftovers lists what a failed write may have left that costs money or
	// room (a bucket's unfinished multipart uploads); nil when nothing can.
	Leftovers func(dest artifact.Destination) []string
	// Crash leaves what a run killed while writing the backup's first
	// tar leaves (a bucket: only an unfinished multipart upload).
	Crash func(dest artifact.Destination, backup string)
	// LargeFile is a tar size that spans several parts (0: 1 MiB).
	LargeFile int
	// Encodes is true for a destination that stores tars transformed, so
	// their stored size is not the tar's.
	Encodes bool
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// Run registers the conformance specs in the current container.
func Run(h Harness) {
	var dest artifact.Destination
	ctx := context.Background()
	BeforeEach(func() { dest = h.New() })
	write := func(dest artifact.Destination, deployment string, t time.Time, tars map[string][]byte, failure error) string {
		return writeBackup(dest, h.Encodes, deployment, t, tars, failure)
	}

	It("stores a backup that reads back byte for byte, is listed good and verifies", func() {
		files := map[string][]byte{"./a": []byte("alpha"), "./dir/b": randomBytes(max(h.LargeFile, 1<<20))}
		tarball := MakeTar(files)
		name := write(dest, "cf", t0, map[string][]byte{"db-0-pg.tar": tarball}, nil)
		all, err := dest.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		Expect(all[0]).To(MatchFields(name, "cf", t0, artifact.Good))
		if !h.Encodes {
			Expect(all[0].Size).To(BeNumerically(">", len(tarball)), "the tars, the metadata and the manifest")
		}

		src, err := dest.Open(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(ctx, src)).To(Succeed())
		Expect(src.Metadata().Instances).To(HaveLen(1))
		Expect(src.Metadata().Files()["db-0-pg.tar"]).To(HaveLen(2))
		Expect(src.Size("db-0-pg.tar")).To(BeEquivalentTo(len(tarball)))
		Expect(readAll(src, "db-0-pg.tar")).To(Equal(tarball))
		Expect(readAll(src, artifact.ManifestFile)).To(Equal([]byte("name: cf\n")))
		stored, err := src.Files()
		Expect(err).NotTo(HaveOccurred())
		meta, size := src.Metadata(), int64(len(tarball))
		if e, ok := meta.Encodings["db-0-pg.tar"]; ok {
			size = e.Size
		}
		Expect(stored).To(And(HaveLen(3), HaveKeyWithValue(meta.StoredName("db-0-pg.tar"), size),
			HaveKey(artifact.MetadataFile), HaveKey(meta.StoredName(artifact.ManifestFile))))
		if h.Leftovers != nil {
			Expect(h.Leftovers(dest)).To(BeEmpty())
		}
	})

	It("marks a failed backup failed, never opens it, and says why", func() {
		name := write(dest, "cf", t0, map[string][]byte{"db-0-pg.tar": MakeTar(map[string][]byte{"./a": []byte("x")})}, errors.New("the unlock of pg failed"))
		all, err := dest.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		Expect(all[0].State).To(Equal(artifact.Failed))
		_, err = dest.Open(ctx, name)
		Expect(err).To(MatchError(And(ContainSubstring("failed backup"), ContainSubstring("the unlock of pg failed"))))
	})

	It("never lists or opens an unfinished backup as good", func() {
		w, err := dest.Create(ctx, artifact.BackupName("cf", t0), t0)
		Expect(err).NotTo(HaveOccurred())
		_, _, err = w.WriteTar("db-0-pg.tar", bytes.NewReader(MakeTar(map[string][]byte{"./a": []byte("x")})))
		Expect(err).NotTo(HaveOccurred())
		all, err := dest.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		Expect(all[0].State).To(Equal(artifact.InProgress))
		_, err = dest.Open(ctx, artifact.BackupName("cf", t0))
		Expect(err).To(MatchError(ContainSubstring("incomplete backup")))
	})

	It("fails a tar whose stream breaks, and leaves a failed backup and no unfinished upload", func() {
		w, err := dest.Create(ctx, artifact.BackupName("cf", t0), t0)
		Expect(err).NotTo(HaveOccurred())
		broken := io.MultiReader(bytes.NewReader(MakeTar(map[string][]byte{"./a": randomBytes(max(h.LargeFile, 1<<20))})[:max(h.LargeFile, 1<<20)/2]),
			iotestErrReader{errors.New("the instance went away")})
		_, _, err = w.WriteTar("db-0-pg.tar", broken)
		Expect(err).To(MatchError(ContainSubstring("the instance went away")))
		Expect(w.Finish(t0, err)).To(Succeed())
		all, err := dest.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		Expect(all[0].State).To(Equal(artifact.Failed))
		if h.Leftovers != nil {
			Expect(h.Leftovers(dest)).To(BeEmpty())
		}
	})

	// Another run's retention, or an operator, may remove a backup that
	// is still being written: it must then not be marked good.
	Describe("a backup whose files change while it is written", func() {
		var w artifact.Writer
		var stored string // its name as List gives it
		BeforeEach(func() {
			var err error
			w, err = dest.Create(ctx, artifact.BackupName("cf", t0), t0)
			Expect(err).NotTo(HaveOccurred())
			sums, _, err := w.WriteTar("db-0-pg.tar", bytes.NewReader(MakeTar(map[string][]byte{"./a": randomBytes(64 << 10)})))
			Expect(err).NotTo(HaveOccurred())
			Expect(w.AddInstanceArtifact("db", 0, "pg", sums)).To(Succeed())
			all, err := dest.List(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(all).To(ConsistOf(HaveField("State", artifact.InProgress)))
			stored = all[0].Name
		})
		notGood := func() {
			all, err := dest.List(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(all).NotTo(ContainElement(HaveField("State", artifact.Good)))
			_, err = dest.Open(ctx, artifact.BackupName("cf", t0))
			Expect(err).To(HaveOccurred())
		}

		It("is not marked good when it was deleted", func() {
			Expect(dest.Delete(ctx, stored)).To(Succeed())
			Expect(w.Finish(t0.Add(time.Minute), nil)).To(MatchError(ContainSubstring("could not be marked good")))
			notGood()
		})

		It("is not marked good when a file's size changed", func() {
			h.Corrupt(dest, stored, "db-0-pg.tar", MakeTar(map[string][]byte{"./a": []byte("short")}))
			Expect(w.Finish(t0.Add(time.Minute), nil)).To(MatchError(And(ContainSubstring("could not be marked good"), ContainSubstring("db-0-pg.tar"))))
			notGood()
		})
	})

	It("never removes a backup in progress younger than the grace period, and then removes it", func() {
		w, err := dest.Create(ctx, artifact.BackupName("cf", t0), t0)
		Expect(err).NotTo(HaveOccurred())
		_, _, err = w.WriteTar("db-0-pg.tar", bytes.NewReader(MakeTar(map[string][]byte{"./a": []byte("x")})))
		Expect(err).NotTo(HaveOccurred())
		write(dest, "cf", t0.Add(time.Minute), nil, nil) // a second run, done while the first drains
		p, err := artifact.Prune(ctx, dest, "cf", artifact.Retention{KeepLast: 1}, t0.Add(2*time.Minute))
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Removed).To(BeEmpty())
		p, err = artifact.Prune(ctx, dest, "cf", artifact.Retention{KeepLast: 1, InProgressGrace: time.Hour}, t0.Add(2*time.Hour))
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Removed).To(HaveLen(1))
		all, err := dest.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(ConsistOf(HaveField("State", artifact.Good)))
	})

	It("refuses a tar that is not a safe tar, and a file name that is a path", func() {
		w, err := dest.Create(ctx, artifact.BackupName("cf", t0), t0)
		Expect(err).NotTo(HaveOccurred())
		_, _, err = w.WriteTar("../escape.tar", bytes.NewReader(MakeTar(nil)))
		Expect(err).To(MatchError(ContainSubstring("invalid artifact file name")))
		_, _, err = w.WriteTar("db-0-pg.tar", bytes.NewReader(MakeTar(map[string][]byte{"../../etc/passwd": []byte("x")})))
		Expect(err).To(HaveOccurred())
	})

	It("refuses names that are not backups' names", func() {
		_, err := dest.Create(ctx, "../cf_20261201T100000Z", t0)
		Expect(err).To(HaveOccurred())
		_, err = dest.Open(ctx, "cf")
		Expect(err).To(HaveOccurred())
		Expect(dest.Delete(ctx, "../x")).NotTo(Succeed())
	})

	It("stores a file as it is with Put, and reads back the encoding recorded for it", func() {
		name := artifact.BackupName("cf", t0)
		w, err := dest.Create(ctx, name, t0)
		Expect(err).NotTo(HaveOccurred())
		tarball := MakeTar(map[string][]byte{"./a": []byte("alpha")})
		sums, err := artifact.SumTar(bytes.NewReader(tarball))
		Expect(err).NotTo(HaveOccurred())
		stored := randomBytes(3 << 10) // what a transform wrote
		n, err := w.Put("db-0-pg.tar.zst", bytes.NewReader(stored))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeEquivalentTo(len(stored)))
		_, err = w.Put("../x", bytes.NewReader(stored))
		Expect(err).To(HaveOccurred())
		// A stream cut short fails the Put (a bucket must not complete
		// the object), even when its error wraps io.ErrUnexpectedEOF.
		cut := io.MultiReader(bytes.NewReader(stored[:100]), iotestErrReader{fmt.Errorf("reading tar stream: %w", io.ErrUnexpectedEOF)})
		_, err = w.Put("db-1-pg.tar.zst", cut)
		Expect(err).To(MatchError(ContainSubstring("reading tar stream: unexpected EOF")))
		e := artifact.Encoding{Transforms: []string{artifact.Zstd}, Size: n, CRC64NVME: crcHex(stored), PlainSize: int64(len(tarball))}
		Expect(w.RecordEncoding("db-0-pg.tar", e)).To(Succeed())
		Expect(w.AddInstanceArtifact("db", 0, "pg", sums)).To(Succeed())
		Expect(w.Finish(t0.Add(time.Minute), nil)).To(Succeed())

		src, err := dest.Open(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(src.Metadata().Encodings).To(HaveKeyWithValue("db-0-pg.tar", e))
		Expect(src.Metadata().StoredName("db-0-pg.tar")).To(Equal("db-0-pg.tar.zst"))
		Expect(readAll(src, "db-0-pg.tar.zst")).To(Equal(stored))
		all, err := dest.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(ConsistOf(And(HaveField("State", artifact.Good), HaveField("Transforms", "zstd"))))
	})

	It("refuses to create a backup that exists", func() {
		write(dest, "cf", t0, nil, nil)
		_, err := dest.Create(ctx, artifact.BackupName("cf", t0), t0)
		Expect(err).To(MatchError(ContainSubstring("already exists")))
	})

	It("finds a file changed after the backup when verifying", func() {
		name := write(dest, "cf", t0, map[string][]byte{"db-0-pg.tar": MakeTar(map[string][]byte{"./a": []byte("alpha")})}, nil)
		h.Corrupt(dest, name, "db-0-pg.tar", MakeTar(map[string][]byte{"./a": []byte("ALPHA")}))
		src, err := dest.Open(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(ctx, src)).To(MatchError(ContainSubstring("checksums don't match for db-0-pg.tar")))
	})

	It("deletes a backup whatever its state", func() {
		good := write(dest, "cf", t0, nil, nil)
		write(dest, "cf", t0.Add(time.Hour), nil, errors.New("boom"))
		Expect(dest.Delete(ctx, good)).To(Succeed())
		all, err := dest.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		Expect(all[0].State).To(Equal(artifact.Failed))
		Expect(dest.Delete(ctx, all[0].Name)).To(Succeed())
		Expect(dest.List(ctx)).To(BeEmpty())
	})

	It("lists what a killed run left as failed, and retention removes it once a newer good backup exists", func() {
		crashed := artifact.BackupName("cf", t0)
		h.Crash(dest, crashed)
		all, err := dest.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		Expect(all[0]).To(And(HaveField("Deployment", "cf"), HaveField("State", artifact.InProgress)))
		_, err = dest.Open(ctx, crashed)
		Expect(err).To(HaveOccurred())

		write(dest, "cf", t0.Add(time.Hour), nil, nil)
		// Past the grace an interrupted backup is given (a day by default).
		p, err := artifact.Prune(ctx, dest, "cf", artifact.Retention{KeepLast: 5}, t0.Add(25*time.Hour))
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Removed).To(HaveLen(1))
		all, err = dest.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		if h.Leftovers != nil {
			Expect(h.Leftovers(dest)).To(BeEmpty())
		}
	})

	It("never removes a finished backup whose metadata it cannot read, and says so", func() {
		odd := write(dest, "cf", t0, nil, nil)
		h.Corrupt(dest, odd, artifact.MetadataFile, []byte("written by a newer bbr: [\n"))
		write(dest, "cf", t0.Add(time.Hour), nil, nil)
		write(dest, "cf", t0.Add(2*time.Hour), nil, nil)
		p, err := artifact.Prune(ctx, dest, "cf", artifact.Retention{KeepLast: 1}, t0.Add(3*time.Hour))
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Removed).To(HaveLen(1))
		Expect(p.Kept).To(ConsistOf(MatchError(ContainSubstring("kept " + odd + ": it cannot be read"))))
		all, err := artifact.List(ctx, dest, "cf")
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(2))
		Expect(all[1]).To(And(HaveField("Name", odd), HaveField("State", artifact.Unreadable)))
	})

	It("applies retention per deployment, never removing the newest good backup", func() {
		for i := range 4 {
			write(dest, "cf", t0.Add(time.Duration(i)*time.Hour), nil, nil)
		}
		write(dest, "cf", t0.Add(90*time.Minute), nil, errors.New("older than a good one"))
		write(dest, "cf", t0.Add(5*time.Hour), nil, errors.New("the newest"))
		write(dest, "redis", t0, nil, nil)
		now := t0.Add(48 * time.Hour)

		p, err := artifact.Prune(ctx, dest, "cf", artifact.Retention{KeepLast: 2}, now)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Removed).To(HaveLen(3)) // two old good ones, the failed one before a good one
		states := func(deployment string) []string {
			all, err := artifact.List(ctx, dest, deployment)
			Expect(err).NotTo(HaveOccurred())
			var out []string
			for _, b := range all {
				out = append(out, b.Time.Format("15:04")+" "+b.State.String())
			}
			return out
		}
		Expect(states("cf")).To(Equal([]string{"15:00 failed", "13:00 good", "12:00 good"}))

		_, err = artifact.Prune(ctx, dest, "cf", artifact.Retention{MaxAge: time.Hour}, now)
		Expect(err).NotTo(HaveOccurred())
		Expect(states("cf")).To(Equal([]string{"15:00 failed", "13:00 good"}))
		Expect(states("redis")).To(Equal([]string{"10:00 good"}))

		newest, err := artifact.Newest(ctx, dest, "cf")
		Expect(err).NotTo(HaveOccurred())
		Expect(newest.Time).To(Equal(t0.Add(3 * time.Hour)))
	})
}

// writeBackup stores a backup of deployment started at t with the given tars
// and finishes it with failure.
func writeBackup(dest artifact.Destination, encodes bool, deployment string, t time.Time, tars map[string][]byte, failure error) string {
	name := artifact.BackupName(deployment, t)
	w, err := dest.Create(context.Background(), name, t)
	Expect(err).NotTo(HaveOccurred())
	Expect(w.SaveManifest("name: " + deployment + "\n")).To(Succeed())
	i := 0
	for file, raw := range tars {
		sums, n, err := w.WriteTar(file, bytes.NewReader(raw))
		Expect(err).NotTo(HaveOccurred())
		if encodes {
			Expect(n).To(BeNumerically(">", 0))
		} else {
			Expect(n).To(BeEquivalentTo(len(raw)))
		}
		Expect(w.AddInstanceArtifact("db", i, "pg", sums)).To(Succeed())
		i++
	}
	Expect(w.RecordLockWindow(t, t.Add(time.Second))).To(Succeed())
	Expect(w.Finish(t.Add(time.Minute), failure)).To(Succeed())
	return name
}

func readAll(src artifact.Source, file string) []byte {
	r, err := src.Open(context.Background(), file)
	Expect(err).NotTo(HaveOccurred())
	defer r.Close()
	raw, err := io.ReadAll(r)
	Expect(err).NotTo(HaveOccurred())
	return raw
}

// MatchFields matches a Stored's name, deployment, time and state.
func MatchFields(name, deployment string, t time.Time, state artifact.State) OmegaMatcher {
	return And(
		HaveField("Name", name), HaveField("Deployment", deployment),
		HaveField("Time", BeTemporally("==", t)), HaveField("State", state))
}

// MakeTar is a tar of the given files (path in the tar -> content), for
// the specs of every package that writes or reads backups.
func MakeTar(files map[string][]byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		Expect(tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(content)), Typeflag: tar.TypeReg})).To(Succeed())
		_, err := tw.Write(content)
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(tw.Close()).To(Succeed())
	return buf.Bytes()
}

func crcHex(b []byte) string {
	h := artifact.NewStoredHash()
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }
