package instance

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

// The checksum script is shell that runs on instances: run it for real.
var _ = Describe("the remote checksum script", func() {
	var dir string
	want := artifact.Checksums{}

	write := func(name, content string) {
		path := filepath.Join(dir, name)
		Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
		Expect(os.WriteFile(path, []byte(content), 0o644)).To(Succeed())
		sum := sha256.Sum256([]byte(content))
		want["./"+name] = hex.EncodeToString(sum[:])
	}

	run := func(path string) (artifact.Checksums, string) {
		cmd := exec.Command("/bin/sh", "-c", checksumScript)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + path}
		out, err := cmd.Output()
		Expect(err).NotTo(HaveOccurred())
		sums, err := ParseChecksums(out)
		Expect(err).NotTo(HaveOccurred())
		return sums, string(out)
	}

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		clear(want)
		write("plain", "a")
		write("sub dir/with space", "b")
		write("*star?", "c")
		write("empty", "")
		Expect(os.Symlink("plain", filepath.Join(dir, "link"))).To(Succeed())
	})

	It("uses openssl when it can and matches the files", func() {
		if _, err := exec.LookPath("openssl"); err != nil {
			Skip("openssl is not installed")
		}
		sums, out := run(os.Getenv("PATH"))
		Expect(out).To(HavePrefix(opensslMarker))
		Expect(sums).To(Equal(want))
	})

	It("falls back to sha256sum -z for names openssl cannot print", func() {
		write("new\nline", "d")
		write(`back\slash`, "e")
		sums, out := run(os.Getenv("PATH"))
		Expect(out).NotTo(HavePrefix(opensslMarker))
		Expect(sums).To(Equal(want))
	})

	It("falls back to sha256sum -z without openssl", func() {
		bin := GinkgoT().TempDir()
		for _, tool := range []string{"find", "xargs", "sha256sum", "printf"} {
			path, err := exec.LookPath(tool)
			Expect(err).NotTo(HaveOccurred())
			Expect(os.Symlink(path, filepath.Join(bin, tool))).To(Succeed())
		}
		sums, out := run(bin)
		Expect(out).NotTo(HavePrefix(opensslMarker))
		Expect(sums).To(Equal(want))
	})

	It("rejects output it does not understand", func() {
		_, err := ParseChecksums([]byte(opensslMarker + "\nnot a checksum\n"))
		Expect(err).To(MatchError(ContainSubstring("unexpected checksum output")))
		_, err = ParseChecksums([]byte("zz  ./x\x00"))
		Expect(err).To(HaveOccurred())
	})
})
