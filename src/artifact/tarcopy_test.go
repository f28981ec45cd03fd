package artifact_test

import (
	"archive/tar"
	"bytes"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

var _ = Describe("CopyVerified, the restore upload", func() {
	// files builds a tar of regular files, in order, name then content.
	files := func(pairs ...string) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		Expect(tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})).To(Succeed())
		for i := 0; i < len(pairs); i += 2 {
			Expect(tw.WriteHeader(&tar.Header{Name: pairs[i], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(pairs[i+1]))})).To(Succeed())
			_, err := tw.Write([]byte(pairs[i+1]))
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(tw.Close()).To(Succeed())
		return buf.Bytes()
	}
	checked := func(raw []byte) artifact.Checksums {
		sums, err := artifact.SumTar(bytes.NewReader(raw))
		Expect(err).NotTo(HaveOccurred())
		return sums
	}

	It("passes a checked stream on byte for byte", func() {
		raw := files("./a", "alpha", "./b", strings.Repeat("b", 1<<20))
		var out bytes.Buffer
		Expect(artifact.CopyVerified(&out, bytes.NewReader(raw), checked(raw))).To(Succeed())
		Expect(out.Bytes()).To(Equal(raw))
	})

	It("stops at a file that changed since it was checked, before the files after it", func() {
		want := checked(files("./a", "alpha", "./b", "beta"))
		changed := files("./a", "ALPHA", "./b", "beta")
		var out bytes.Buffer
		err := artifact.CopyVerified(&out, bytes.NewReader(changed), want)
		Expect(err).To(MatchError("./a differs from the backup's metadata"))
		Expect(out.String()).NotTo(ContainSubstring("beta"))
	})

	It("passes nothing after the end-of-archive marker", func() {
		raw := files("./a", "alpha")
		junk := append(append([]byte{}, raw...), bytes.Repeat([]byte("junk"), 1<<18)...)
		var out bytes.Buffer
		Expect(artifact.CopyVerified(&out, bytes.NewReader(junk), checked(raw))).To(Succeed())
		Expect(out.Len()).To(BeNumerically("<=", len(raw)))
		Expect(out.String()).NotTo(ContainSubstring("junk"))
		sums, err := artifact.SumTar(bytes.NewReader(out.Bytes()))
		Expect(err).NotTo(HaveOccurred(), "what passed is a whole tar")
		Expect(sums).To(Equal(checked(raw)))
	})

	It("never passes on the header of an entry it refuses", func() {
		raw := tarOf(dir("./"), symlink("./link", "/etc"), reg("./link/passwd"))
		var out bytes.Buffer
		err := artifact.CopyVerified(&out, bytes.NewReader(raw), artifact.Checksums{"./link/passwd": "x"})
		Expect(err).To(MatchError(ContainSubstring(`"./link/passwd" lies below "./link", which is not a directory`)))
		Expect(out.String()).To(ContainSubstring("./link"), "the link itself is safe")
		Expect(out.String()).NotTo(ContainSubstring("passwd"))
	})

	It("refuses a file the backup's metadata does not list, before its header passes, and a stream that lacks one", func() {
		want := checked(files("./a", "alpha"))
		var out bytes.Buffer
		Expect(artifact.CopyVerified(&out, bytes.NewReader(files("./a", "alpha", "./extra", "x")), want)).To(MatchError("./extra is not in the backup's metadata"))
		Expect(out.String()).NotTo(ContainSubstring("extra"))
		Expect(artifact.CopyVerified(&out, bytes.NewReader(files()), want)).To(MatchError(ContainSubstring("lacks files the backup's metadata lists: [./a]")))
	})
})
