package artifact_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"

	"github.com/bbr-release/bbr/src/artifact"
)

var _ = Describe("writing a large artifact file behind itself", func() {
	It("keeps every byte and leaves the file's early chunks out of the page cache", func() {
		dir := GinkgoT().TempDir()
		var fs unix.Statfs_t
		Expect(unix.Statfs(dir, &fs)).To(Succeed())
		if fs.Type == unix.TMPFS_MAGIC || fs.Type == unix.OVERLAYFS_SUPER_MAGIC {
			Skip("the temporary directory is on a filesystem that only lives in memory")
		}
		d, err := artifact.Create(dir, "dep", time.Now())
		Expect(err).NotTo(HaveOccurred())

		// 40 MiB and an odd tail: five chunks and a partial one.
		data := make([]byte, 40<<20+12345)
		_, _ = rand.Read(data)
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		Expect(tw.WriteHeader(&tar.Header{Name: "./blob", Typeflag: tar.TypeReg, Size: int64(len(data)), Mode: 0o600})).To(Succeed())
		_, _ = tw.Write(data)
		Expect(tw.Close()).To(Succeed())
		stream := buf.Bytes()

		sums, n, err := d.WriteTar("g-0-j.tar", bytes.NewReader(stream))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeEquivalentTo(len(stream)))
		sum := sha256.Sum256(data)
		Expect(sums).To(Equal(artifact.Checksums{"./blob": hex.EncodeToString(sum[:])}))

		path := filepath.Join(d.Path, "g-0-j.tar")
		written, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(bytes.Equal(written, stream)).To(BeTrue(), "the file differs from the stream")

		// Reading it back above brought it into the cache; write again and
		// look before reading.
		_, _, err = d.WriteTar("g-1-j.tar", bytes.NewReader(stream))
		Expect(err).NotTo(HaveOccurred())
		Expect(residentMiB(filepath.Join(d.Path, "g-1-j.tar"), 24<<20)).To(BeNumerically("<=", 1),
			"the first 24 MiB should have been written and dropped from the cache")
	})
})

// residentMiB says how much of the first n bytes of path is in the page cache.
func residentMiB(path string, n int) int {
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = unix.Munmap(m) }()
	page := os.Getpagesize()
	vec := make([]byte, (n+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0])))
	Expect(errno).To(BeZero())
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	return resident * page >> 20
}
