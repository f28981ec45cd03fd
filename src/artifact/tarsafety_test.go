package artifact_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

type entry struct {
	name string
	typ  byte
	link string
	mode int64
}

func tarOf(entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode}
		if e.typ == tar.TypeReg {
			h.Size = 1
		}
		Expect(tw.WriteHeader(h)).To(Succeed())
		if e.typ == tar.TypeReg {
			_, _ = io.WriteString(tw, "x")
		}
	}
	Expect(tw.Close()).To(Succeed())
	return buf.Bytes()
}

func reg(name string) entry            { return entry{name: name, typ: tar.TypeReg} }
func dir(name string) entry            { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) entry    { return entry{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) entry   { return entry{name: name, typ: tar.TypeLink, link: to} }
func ofType(name string, t byte) entry { return entry{name: name, typ: t} }

var _ = Describe("tar validation (backup and restore)", func() {
	DescribeTable("accepts what tar -c . writes",
		func(entries ...entry) {
			_, err := artifact.SumTar(bytes.NewReader(tarOf(entries...)))
			Expect(err).NotTo(HaveOccurred())
		},
		Entry("files and directories", dir("./"), dir("./a/"), reg("./a/b"), reg("./c")),
		Entry("a hard link to an earlier file", reg("./a"), hardlink("./b", "./a")),
		Entry("links that stay inside", dir("./"), dir("./d/"), reg("./d/f"), symlink("./l", "d/f"), symlink("./d/up", "../d"), symlink("./dot", ".")),
		Entry("a link through a link that stays inside", dir("./p/q/"), symlink("./p/q/s", ".."), symlink("./x", "p/q/s/q")),
		Entry("a dangling link inside", symlink("./l", "nothing/here")),
		Entry("a directory listed twice", dir("./a/"), dir("./a/"), reg("./a/f")),
		Entry("a setgid directory", entry{name: "./shared/", typ: tar.TypeDir, mode: 0o2775}),
		Entry("names without ./", dir("a/"), reg("a/f")),
		// Targets may point anywhere, as in upstream's artifacts: GNU tar
		// creates links without following them, and nothing may be
		// written below one.
		Entry("an absolute link", symlink("./l", "/etc")),
		Entry("a link up", symlink("./a/l", "../..")),
		Entry("links in a loop", symlink("./a", "b"), symlink("./b", "a")),
	)

	DescribeTable("refuses anything unsafe to extract, naming the entry",
		func(message string, entries ...entry) {
			sums, err := artifact.SumTar(bytes.NewReader(tarOf(entries...)))
			Expect(err).To(MatchError(ContainSubstring(message)))
			Expect(sums).To(BeNil())
		},
		Entry("a parent reference", `"../evil" escapes`, reg("../evil")),
		Entry("a parent reference inside", `"./a/../../evil" escapes`, reg("./a/../../evil")),
		Entry("an unclean name", `"./a/./b" escapes`, reg("./a/./b")),
		Entry("an absolute name", `"/etc/passwd" escapes`, reg("/etc/passwd")),
		Entry("a file written through a link", `lies below "./d", which is not a directory`, symlink("./d", "sub"), reg("./d/passwd")),
		Entry("a link placed over a directory already used", `other entries lie below it`, reg("./d/f"), symlink("./d", "sub")),
		Entry("a file below a file", `which is not a directory`, reg("./f"), reg("./f/g")),
		Entry("a hard link to outside", `links to "/etc/shadow"`, hardlink("./h", "/etc/shadow")),
		Entry("a hard link to a later file", `links to "./a"`, hardlink("./h", "./a"), reg("./a")),
		Entry("a hard link to a directory", `links to "./d"`, dir("./d/"), hardlink("./h", "./d")),
		Entry("a file named twice", `appears twice`, reg("./a"), reg("./a")),
		Entry("a file replaced by a link", `appears twice`, reg("./a"), symlink("./a", "b")),
		Entry("a character device", `character device`, ofType("./tty", tar.TypeChar)),
		Entry("a block device", `block device`, ofType("./sda", tar.TypeBlock)),
		Entry("a FIFO", `FIFO`, ofType("./fifo", tar.TypeFifo)),
		Entry("a root that is a link", `must be a directory`, symlink("./", "..")),
		Entry("a setuid file", `setuid`, entry{name: "./sh", typ: tar.TypeReg, mode: 0o4755}),
		Entry("a setgid file", `setgid`, entry{name: "./sh", typ: tar.TypeReg, mode: 0o2755}),
		Entry("an empty name", `escapes`, reg("")),
	)

	It("refuses a name longer than PATH_MAX", func() {
		_, err := artifact.SumTar(bytes.NewReader(tarOf(reg("./" + string(bytes.Repeat([]byte("a/"), 3000)) + "f"))))
		Expect(err).To(MatchError(ContainSubstring("longer than 4096")))
	})

	It("refuses quickly a tiny sparse stream that claims exabytes of holes", func() {
		// A pax (0.1) sparse file: 1.5 KiB of input that archive/tar would
		// expand to an exabyte of zeros if asked to read it.
		// The order matters: archive/tar wants each offset before its
		// numbytes (a map here made this spec fail one run in a few).
		raw := paxStream([][2]string{
			{"GNU.sparse.numblocks", "1"}, {"GNU.sparse.offset", "1152921504606846975"}, {"GNU.sparse.numbytes", "1"},
			{"GNU.sparse.size", "1152921504606846976"}, {"GNU.sparse.name", "./s"},
		}, "./GNUSparseFile.0/s", "x")
		// Reading the holes would take years; refusing takes microseconds.
		// The bound is far from both, so a busy machine cannot fail it.
		done := make(chan error, 1)
		go func() { _, err := artifact.SumTar(bytes.NewReader(raw)); done <- err }()
		var err error
		Eventually(done, 30*time.Second).Should(Receive(&err))
		Expect(err).To(MatchError(ContainSubstring(`"./s" is a sparse file`)))
	})

	It("refuses a pax global header", func() {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		Expect(tw.WriteHeader(&tar.Header{Name: "./g", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "hi"}})).To(Succeed())
		Expect(tw.Close()).To(Succeed())
		raw := buf.Bytes()
		_, err := artifact.SumTar(bytes.NewReader(raw))
		Expect(err).To(MatchError(ContainSubstring("pax global header")))
	})

	It("makes restore's Verify refuse an artifact whose tar writes through a link, before anything else happens", func() {
		dst := copyDir(fixture)
		raw := tarOf(dir("./"), reg("./a.txt"), symlink("./evil", "/etc"), reg("./evil/passwd"))
		sums, err := artifact.SumTar(bytes.NewReader(tarOf(dir("./"), reg("./a.txt"))))
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(dst, "api-0-api.tar"), raw, 0o600)).To(Succeed())
		meta, err := os.ReadFile(filepath.Join(dst, artifact.MetadataFile))
		Expect(err).NotTo(HaveOccurred())
		// Point the metadata at the new content, so only the link is wrong.
		meta = bytes.Replace(meta, []byte("./a.txt: 5c5aefe941f1b8ad65f7685b566e3608845f22f64beea2716884e134732dcc26\n      ./empty: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n      ./nested/deep/b.txt: f2965abd555ca1743503388f1fd6a65f10b1efdfd95999f9db4b0001526bda3e"), []byte("./a.txt: "+sums["./a.txt"]), 1)
		Expect(os.WriteFile(filepath.Join(dst, artifact.MetadataFile), meta, 0o600)).To(Succeed())
		d, err := artifact.Open(dst)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), d)).To(MatchError(SatisfyAll(ContainSubstring("api-0-api.tar"), ContainSubstring(`"./evil/passwd" lies below "./evil", which is not a directory`))))
	})
})

var _ = Describe("artifact metadata", func() {
	It("Marshal leaves the caller's instance order alone", func() {
		m := artifact.Metadata{Instances: []artifact.InstanceMetadata{{Name: "z", Index: "0"}, {Name: "a", Index: "0"}}}
		_, err := m.Marshal()
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Instances[0].Name).To(Equal("z"))
	})

	It("refuses checksum paths that are not ./ and a clean path", func() {
		for _, p := range []string{"a.txt", "./a/../b", "./", "/a", "./a//b"} {
			_, err := artifact.ParseMetadata([]byte("custom_artifacts:\n- name: c\n  checksums:\n    \"" + p + "\": " + sixtyFourA() + "\n"))
			Expect(err).To(MatchError(ContainSubstring("invalid file path")), p)
		}
	})
})

// paxStream is a pax extended header with records, then a regular file.
func paxStream(records [][2]string, name, content string) []byte {
	var body bytes.Buffer
	for _, kv := range records {
		k, v := kv[0], kv[1]
		rec := " " + k + "=" + v + "\n"
		n := len(rec)
		for len(strconv.Itoa(n))+len(rec) != n {
			n = len(strconv.Itoa(n)) + len(rec)
		}
		body.WriteString(strconv.Itoa(n) + rec)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	Expect(tw.WriteHeader(&tar.Header{Name: "PaxHeader", Typeflag: tar.TypeReg, Size: int64(body.Len()), Mode: 0o644, Format: tar.FormatUSTAR})).To(Succeed())
	_, _ = tw.Write(body.Bytes())
	Expect(tw.Flush()).To(Succeed())
	head := retype(buf.Bytes(), tar.TypeXHeader)
	buf.Reset()
	tw = tar.NewWriter(&buf)
	Expect(tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(content)), Mode: 0o644, Format: tar.FormatUSTAR})).To(Succeed())
	_, _ = io.WriteString(tw, content)
	Expect(tw.Close()).To(Succeed())
	return append(head, buf.Bytes()...)
}

// retype changes the type of the first header in raw and fixes its checksum.
func retype(raw []byte, typ byte) []byte {
	raw = append([]byte(nil), raw...)
	raw[156] = typ
	copy(raw[148:156], "        ")
	sum := 0
	for _, b := range raw[:512] {
		sum += int(b)
	}
	copy(raw[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return raw
}
