package artifact_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

// fixture is an artifact written by upstream bbr v1.9.75 (see its README).
var fixture = filepath.Join("..", "..", "testdata", "upstream-bbr-1.9.75", "acc_20261125T032327Z")

func copyDir(src string) string {
	dst := filepath.Join(GinkgoT().TempDir(), filepath.Base(src))
	Expect(os.Mkdir(dst, 0o700)).To(Succeed())
	entries, err := os.ReadDir(src)
	Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(src, e.Name()))
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(dst, e.Name()), raw, 0o600)).To(Succeed())
	}
	return dst
}

var _ = Describe("a job that backed up nothing", func() {
	It("gives a backup that verifies, and that refuses a tar with files", func() {
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		d, err := artifact.Create(GinkgoT().TempDir(), "dep", now)
		Expect(err).NotTo(HaveOccurred())
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		Expect(tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})).To(Succeed())
		Expect(tw.Close()).To(Succeed())
		sums, _, err := d.WriteTar("g-0-j.tar", &buf)
		Expect(err).NotTo(HaveOccurred())
		Expect(sums).To(BeEmpty())
		Expect(d.AddInstanceArtifact("g", 0, "j", sums)).To(Succeed())
		Expect(d.Finish(now, nil)).To(Succeed())

		reopened, err := artifact.Open(d.Path)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), reopened)).To(Succeed())

		Expect(os.WriteFile(filepath.Join(d.Path, "g-0-j.tar"), tarOf(entry{name: "./x", typ: tar.TypeReg}), 0o600)).To(Succeed())
		Expect(artifact.Verify(context.Background(), reopened)).To(MatchError(ContainSubstring("checksums don't match for g-0-j.tar: [./x]")))
	})
})

var _ = Describe("an upstream artifact", func() {
	It("opens and verifies", func() {
		d, err := artifact.Open(fixture)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), d)).To(Succeed())
		files := d.Metadata().Files()
		Expect(files).To(HaveLen(5))
		Expect(files).To(HaveKey("cache-acc-release-backup-one-restore-all.tar"))
		Expect(files["store-1-store.tar"]).To(HaveKeyWithValue("./a.txt", "dc3fab2dfbd2ddf8543ab79c0f83e42b07c97f0f3acda4975e1ec139d0e6da94"))
	})

	It("stops verifying once the context is done", func() {
		d, err := artifact.Open(fixture)
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		Expect(artifact.Verify(ctx, d)).To(MatchError(context.Canceled))
	})

	It("re-renders its metadata with the same keys, layout and value formats", func() {
		raw, err := os.ReadFile(filepath.Join(fixture, artifact.MetadataFile))
		Expect(err).NotTo(HaveOccurred())
		m, err := artifact.ParseMetadata(raw)
		Expect(err).NotTo(HaveOccurred())
		out, err := m.Marshal()
		Expect(err).NotTo(HaveOccurred())
		// Our rendering sorts instances; upstream's order is drain order.
		// Everything else must be identical: compare after re-parsing our
		// output and checking the textual shape of a few lines.
		again, err := artifact.ParseMetadata(out)
		Expect(err).NotTo(HaveOccurred())
		Expect(again.Files()).To(Equal(m.Files()))
		Expect(string(out)).To(ContainSubstring("- name: store\n  index: \"1\"\n  artifacts:\n  - name: store\n    checksums:\n      ./a.txt: dc3fab2d"))
		Expect(string(out)).To(ContainSubstring("backup_activity:\n  start_time: 2026/11/25 03:23:29 UTC\n  finish_time: 2026/11/25 03:23:30 UTC\n"))
		Expect(string(out)).To(ContainSubstring("custom_artifacts:\n- name: cache-acc-release-backup-one-restore-all\n"))
	})

	It("names a flipped byte in a tar", func() {
		dir := copyDir(fixture)
		tarPath := filepath.Join(dir, "api-0-api.tar")
		raw, err := os.ReadFile(tarPath)
		Expect(err).NotTo(HaveOccurred())
		i := bytes.Index(raw, []byte("api data"))
		raw[i] ^= 0x20
		Expect(os.WriteFile(tarPath, raw, 0o600)).To(Succeed())
		d, err := artifact.Open(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), d)).To(MatchError(ContainSubstring("api-0-api.tar")))
	})

	It("names a missing tar and a truncated one", func() {
		dir := copyDir(fixture)
		Expect(os.Remove(filepath.Join(dir, "store-0-store.tar"))).To(Succeed())
		Expect(os.Truncate(filepath.Join(dir, "store-1-cache.tar"), 700)).To(Succeed())
		d, err := artifact.Open(dir)
		Expect(err).NotTo(HaveOccurred())
		err = artifact.Verify(context.Background(), d)
		Expect(err).To(MatchError(ContainSubstring("store-0-store.tar is missing")))
		Expect(err).To(MatchError(ContainSubstring("store-1-cache.tar")))
	})

	It("refuses metadata with paths that escape or bad checksums", func() {
		_, err := artifact.ParseMetadata([]byte("instances:\n- name: a\n  index: \"0\"\n  artifacts:\n  - name: j\n    checksums:\n      ../../etc/passwd: " + sixtyFourA() + "\n"))
		Expect(err).To(MatchError(ContainSubstring("invalid file path")))
		_, err = artifact.ParseMetadata([]byte("instances:\n- name: ../a\n  index: \"0\"\n"))
		Expect(err).To(MatchError(ContainSubstring("invalid instance")))
		_, err = artifact.ParseMetadata([]byte("custom_artifacts:\n- name: c\n  checksums:\n    ./x: nothex\n"))
		Expect(err).To(MatchError(ContainSubstring("invalid sha256")))
	})
})

var _ = Describe("writing an artifact", func() {
	It("creates a 0700 directory and hashes a tar while writing it", func() {
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		d, err := artifact.Create(GinkgoT().TempDir(), "dep", now)
		Expect(err).NotTo(HaveOccurred())
		Expect(filepath.Base(d.Path)).To(Equal("dep_20260102T030405Z" + artifact.InProgressSuffix))
		info, err := os.Stat(d.Path)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o700)))

		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		Expect(tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})).To(Succeed())
		Expect(tw.WriteHeader(&tar.Header{Name: "./with space", Typeflag: tar.TypeReg, Size: 5, Mode: 0o644})).To(Succeed())
		_, _ = io.WriteString(tw, "hello")
		Expect(tw.WriteHeader(&tar.Header{Name: "./link", Typeflag: tar.TypeLink, Linkname: "./with space"})).To(Succeed())
		Expect(tw.Close()).To(Succeed())
		buf.Write(make([]byte, 8192)) // GNU tar pads to its record size

		want := buf.Len()
		sums, n, err := d.WriteTar("g-0-j.tar", &buf)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeEquivalentTo(want))
		Expect(sums).To(Equal(artifact.Checksums{
			"./with space": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
			"./link":       "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		}))
		Expect(d.AddInstanceArtifact("g", 0, "j", sums)).To(Succeed())
		Expect(d.Path).To(HaveSuffix(artifact.InProgressSuffix))
		_, err = artifact.Open(d.Path)
		Expect(err).To(MatchError(ContainSubstring("is an incomplete backup")))
		Expect(d.Finish(now, nil)).To(Succeed())
		Expect(filepath.Base(d.Path)).To(MatchRegexp(`^dep_\d{8}T\d{6}Z$`))

		reopened, err := artifact.Open(d.Path)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), reopened)).To(Succeed())
		info, err = os.Stat(filepath.Join(d.Path, "g-0-j.tar"))
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))
	})

	It("names a failed backup .failed, says why inside, and Open refuses it", func() {
		d, err := artifact.Create(GinkgoT().TempDir(), "dep", time.Now())
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Finish(time.Now(), errors.New("drain of redis/0 failed"))).To(Succeed())
		Expect(d.Path).To(HaveSuffix(artifact.FailedSuffix))
		Expect(filepath.Join(d.Path, artifact.FailedFile)).To(BeAnExistingFile())
		_, err = artifact.Open(d.Path)
		Expect(err).To(MatchError(ContainSubstring("is a failed backup and cannot be restored: drain of redis/0 failed")))
		renamed := strings.TrimSuffix(d.Path, artifact.FailedSuffix)
		Expect(os.Rename(d.Path, renamed)).To(Succeed())
		_, err = artifact.Open(renamed)
		Expect(err).To(MatchError(ContainSubstring("is a failed backup")), "the marker counts even if the name is changed")
	})

	It("holds a FAILED file while in progress, so a crash or a full disk still says not good, and drops it when good", func() {
		d, err := artifact.Create(GinkgoT().TempDir(), "dep", time.Now())
		Expect(err).NotTo(HaveOccurred())
		info, err := os.Stat(filepath.Join(d.Path, artifact.FailedFile))
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Size()).To(BeNumerically(">=", 4096), "room for the reason is reserved")
		Expect(d.Finish(time.Now(), nil)).To(Succeed())
		Expect(filepath.Join(d.Path, artifact.FailedFile)).NotTo(BeAnExistingFile())
		_, err = artifact.Open(d.Path)
		Expect(err).NotTo(HaveOccurred())
	})

	It("calls a .failed backup failed even when it has no FAILED file", func() {
		d, err := artifact.Create(GinkgoT().TempDir(), "dep", time.Now())
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Finish(time.Now(), errors.New(strings.Repeat("long reason ", 1000)))).To(Succeed())
		raw, err := os.ReadFile(filepath.Join(d.Path, artifact.FailedFile))
		Expect(err).NotTo(HaveOccurred())
		Expect(len(raw)).To(BeNumerically("<=", 4096), "the reason fits the reserve")
		Expect(os.Remove(filepath.Join(d.Path, artifact.FailedFile))).To(Succeed())
		_, err = artifact.Open(d.Path)
		Expect(err).To(MatchError(ContainSubstring("is a failed backup and cannot be restored")))
	})

	It("refuses a tar entry that escapes the directory", func() {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		Expect(tw.WriteHeader(&tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})).To(Succeed())
		_, _ = io.WriteString(tw, "x")
		Expect(tw.Close()).To(Succeed())
		_, err := artifact.SumTar(&buf)
		Expect(err).To(MatchError(ContainSubstring("escapes")))
	})

	It("refuses an artifact path that is not a directory", func() {
		_, err := artifact.Create(filepath.Join(GinkgoT().TempDir(), "nope"), "dep", time.Now())
		Expect(err).To(MatchError(ContainSubstring("is not a directory")))
	})
})

func sixtyFourA() string { return string(bytes.Repeat([]byte("a"), 64)) }
