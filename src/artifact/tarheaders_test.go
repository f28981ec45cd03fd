package artifact

import (
	"bytes"
	"fmt"
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// rawTar writes tar blocks by hand, so a spec can make header sequences
// that archive/tar's writer never would.
type rawTar struct{ bytes.Buffer }

const (
	gnuMagic   = "ustar  \x00"
	ustarMagic = "ustar\x0000"
)

// header appends one header block.
func (t *rawTar) header(name string, typ byte, size int, link, magic string) *rawTar {
	b := make([]byte, blockSize)
	copy(b, name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = typ
	copy(b[157:], link)
	copy(b[257:], magic)
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	t.Write(b)
	return t
}

// data appends data padded to a block.
func (t *rawTar) data(d []byte) *rawTar {
	t.Write(d)
	t.Write(make([]byte, (blockSize-len(d)%blockSize)%blockSize))
	return t
}

func (t *rawTar) longName(name string) *rawTar {
	return t.header("././@LongLink", 'L', len(name)+1, "", gnuMagic).data([]byte(name + "\x00"))
}

func (t *rawTar) pax(kv ...string) *rawTar {
	var recs []byte
	for i := 0; i+1 < len(kv); i += 2 {
		recs = append(recs, paxRecord(kv[i], kv[i+1])...)
	}
	return t.header("./PaxHeaders/x", 'x', len(recs), "", ustarMagic).data(recs)
}

func (t *rawTar) file(name, content, magic string) *rawTar {
	return t.header(name, '0', len(content), "", magic).data([]byte(content))
}

func (t *rawTar) end() []byte {
	t.Write(make([]byte, 2*blockSize))
	return t.Bytes()
}

func paxRecord(k, v string) []byte {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for len(strconv.Itoa(n))+len(rec) != n {
		n = len(strconv.Itoa(n)) + len(rec)
	}
	return []byte(strconv.Itoa(n) + rec)
}

// ambiguousName is the case: archive/tar reads the GNU long name
// (./innocent.txt), GNU tar the PAX path (./s/pwned.txt), below a symlink
// to the outside that both see.
func ambiguousName(paxFirst bool) []byte {
	t := &rawTar{}
	t.header("./", '5', 0, "", gnuMagic).header("./s", '2', 0, "/outside", gnuMagic)
	if paxFirst {
		t.pax("path", "./s/pwned.txt").longName("./innocent.txt")
	} else {
		t.longName("./innocent.txt").pax("path", "./s/pwned.txt")
	}
	return t.file("x", "pwned", gnuMagic).end()
}

var _ = Describe("tar headers that two readers read differently", func() {
	refuses := func(raw []byte, why string) {
		_, err := SumTar(bytes.NewReader(raw))
		ExpectWithOffset(1, err).To(MatchError(ContainSubstring(why)))
		var sent bytes.Buffer
		err = CopyVerified(&sent, bytes.NewReader(raw), Checksums{"./innocent.txt": "x"})
		ExpectWithOffset(1, err).To(MatchError(ContainSubstring(why)))
		ExpectWithOffset(1, sent.String()).NotTo(ContainSubstring("pwned"), "nothing of the entry reaches the instance")
	}

	It("refuses a PAX path beside a GNU long name, in either order", func() {
		refuses(ambiguousName(true), "both a PAX header and a GNU long name")
		refuses(ambiguousName(false), "both a PAX header and a GNU long name")
	})

	It("refuses two headers of one kind for one entry", func() {
		refuses((&rawTar{}).longName("./a").longName("./innocent.txt").file("x", "pwned", gnuMagic).end(), "more than one GNU long name header")
		refuses((&rawTar{}).pax("mtime", "1").pax("path", "./innocent.txt").file("x", "pwned", ustarMagic).end(), "more than one PAX header")
	})

	It("refuses PAX records it does not know, repeated ones and malformed ones", func() {
		refuses((&rawTar{}).pax("hdrcharset", "BINARY", "path", "./innocent.txt").file("x", "pwned", ustarMagic).end(), `record "hdrcharset"`)
		refuses((&rawTar{}).pax("path", "./a", "path", "./innocent.txt").file("x", "pwned", ustarMagic).end(), `the record "path" twice`)
		t := &rawTar{}
		t.header("./PaxHeaders/x", 'x', 13, "", ustarMagic).data([]byte("013 path=./a\n"))
		refuses(t.file("./innocent.txt", "pwned", ustarMagic).end(), "PAX header is malformed")
	})

	It("refuses headers that are neither POSIX ustar nor GNU", func() {
		// A ustar magic with another version is v7 to archive/tar, which then
		// ignores the prefix field; GNU tar reads the prefix.
		refuses((&rawTar{}).file("./innocent.txt", "pwned", "ustar\x00xx").end(), "neither POSIX ustar nor GNU")
		refuses((&rawTar{}).file("./innocent.txt", "pwned", "").end(), "neither POSIX ustar nor GNU")
	})

	It("refuses a directory or link that claims data", func() {
		t := (&rawTar{}).header("./d", '5', 512, "", gnuMagic)
		t.file("./innocent.txt", "pwned", gnuMagic)
		refuses(t.end(), "claims 512 bytes of data")
	})

	It("refuses a stream cut short at a block boundary, whose end marker is gone", func() {
		whole := (&rawTar{}).file("./innocent.txt", "pwned", gnuMagic).file("./b", "more", gnuMagic).end()
		for _, cut := range []int{2 * blockSize, 4 * blockSize, 4*blockSize + blockSize} {
			_, err := SumTar(bytes.NewReader(whole[:cut]))
			Expect(err).To(MatchError(ContainSubstring("ends without its end-of-archive marker")), "cut at %d", cut)
		}
		_, err := SumTar(bytes.NewReader(whole))
		Expect(err).NotTo(HaveOccurred())
	})

	It("accepts what GNU tar and archive/tar write for long names", func() {
		long := "./" + string(bytes.Repeat([]byte("d/"), 80)) + "f"
		_, err := SumTar(bytes.NewReader((&rawTar{}).longName(long).file("x", "data", gnuMagic).end()))
		Expect(err).NotTo(HaveOccurred())
		_, err = SumTar(bytes.NewReader((&rawTar{}).pax("path", long, "mtime", "1.5").file("x", "data", ustarMagic).end()))
		Expect(err).NotTo(HaveOccurred())
	})
})
