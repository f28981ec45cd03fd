package artifact

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Go's archive/tar merges an entry's extension headers (PAX 'x', GNU long
// name 'L' and long link 'K') into one Header; GNU tar, which extracts on
// the instance as root, merges them by other rules. An entry with a PAX
// path and a GNU long name is ./innocent.txt to one and ./s/pwned.txt to
// the other. So every entry's raw header blocks are checked too, and only
// shapes that both readers read alike are accepted: at most one header of
// each kind, PAX or GNU extensions but never both, PAX records bbr knows,
// and a ustar or GNU magic on the entry's own header.

const blockSize = 512

// paxKeys are the PAX records accepted: those GNU tar and Go's writer use
// for long names, big numbers and times. Others (sparse maps, charsets,
// xattrs) change how one reader or the other reads the entry.
var paxKeys = map[string]bool{
	"path": true, "linkpath": true, "size": true, "uid": true, "gid": true,
	"uname": true, "gname": true, "mtime": true, "atime": true, "ctime": true,
}

// tarScanner reads a tar stream with archive/tar and checks each entry:
// the merged header against the safety rules (tarValidator), the raw
// blocks behind it against what GNU tar would read differently. The raw
// bytes of each header pass through rec, which forwards them on flush.
type tarScanner struct {
	rec *recorder
	tr  *tar.Reader
	v   *tarValidator
	pad int // padding after the previous entry's data: it starts rec's bytes
}

func newTarScanner(r io.Reader, w io.Writer) *tarScanner {
	rec := &recorder{r: r, w: w}
	return &tarScanner{rec: rec, tr: tar.NewReader(rec), v: newTarValidator()}
}

// next returns the next entry's header once it passed every check, or
// io.EOF after the end-of-archive marker. An entry that fails a check is
// a NotCheckedError; a stream that cannot be read, another error. The caller reads all of a
// regular file's data before calling next again.
func (s *tarScanner) next(sums Checksums) (*tar.Header, error) {
	hdr, err := s.tr.Next()
	raw := s.rec.buf.Bytes()
	if s.pad <= len(raw) {
		raw = raw[s.pad:]
	}
	if errors.Is(err, io.EOF) {
		if len(raw) != 2*blockSize {
			return nil, notChecked("the tar stream ends without its end-of-archive marker: it was cut short")
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("reading tar stream: %w", err)
	}
	if err := s.v.check(hdr, sums); err != nil {
		return nil, notChecked("%v", err)
	}
	if hdr.Typeflag != tar.TypeReg && hdr.Size != 0 {
		// archive/tar reads no data for these; GNU tar may skip it.
		return nil, notChecked("tar entry %q of type %s claims %d bytes of data", truncate(hdr.Name, 64), typeName(hdr.Typeflag), hdr.Size)
	}
	if err := checkRawHeaders(raw); err != nil {
		return nil, notChecked("tar entry %q: %v", truncate(hdr.Name, 64), err)
	}
	s.pad = int((blockSize - hdr.Size%blockSize) % blockSize)
	return hdr, nil
}

// checkRawHeaders checks the header blocks of one entry: any extension
// headers with their data, then the entry's own header block, last.
func checkRawHeaders(raw []byte) error {
	var seen [256]int
	for {
		if len(raw) < blockSize {
			return errors.New("its headers do not end on a block boundary")
		}
		blk := raw[:blockSize]
		raw = raw[blockSize:]
		if len(raw) == 0 {
			if seen[tar.TypeXHeader] > 0 && seen[tar.TypeGNULongName]+seen[tar.TypeGNULongLink] > 0 {
				return errors.New("it has both a PAX header and a GNU long name or link: tar readers disagree on its name")
			}
			return checkMagic(blk)
		}
		typ := blk[156]
		if typ != tar.TypeXHeader && typ != tar.TypeGNULongName && typ != tar.TypeGNULongLink {
			return fmt.Errorf("a header block of type %q precedes it", typ)
		}
		if seen[typ]++; seen[typ] > 1 {
			return fmt.Errorf("it has more than one %s header: tar readers disagree on which counts", extName(typ))
		}
		size, err := octal(blk[124:136])
		if err != nil || size > int64(len(raw)) {
			return fmt.Errorf("its %s header has a bad size", extName(typ))
		}
		data := raw[:size]
		raw = raw[(size+blockSize-1)/blockSize*blockSize:]
		if typ == tar.TypeXHeader {
			if err := checkPAX(data); err != nil {
				return err
			}
		}
	}
}

func extName(typ byte) string {
	switch typ {
	case tar.TypeXHeader:
		return "PAX"
	case tar.TypeGNULongName:
		return "GNU long name"
	}
	return "GNU long link"
}

// checkMagic accepts POSIX ustar ("ustar\0" "00") and GNU ("ustar " " \0")
// headers. Others (v7, star, a ustar magic with another version) are read
// with or without the prefix field depending on the reader.
func checkMagic(blk []byte) error {
	magic := string(blk[257:265])
	if magic != "ustar\x0000" && magic != "ustar  \x00" {
		return fmt.Errorf("its header is neither POSIX ustar nor GNU (magic %q)", magic)
	}
	return nil
}

// checkPAX parses PAX records strictly ("<len> <key>=<value>\n", each
// length exact) and accepts each known key once.
func checkPAX(data []byte) error {
	keys := map[string]bool{}
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp <= 0 {
			return errors.New("its PAX header is malformed")
		}
		n, err := strconv.Atoi(string(data[:sp]))
		if err != nil || n <= sp+1 || n > len(data) || data[n-1] != '\n' || data[0] == '0' {
			return errors.New("its PAX header is malformed")
		}
		key, _, ok := bytes.Cut(data[sp+1:n-1], []byte("="))
		if !ok {
			return errors.New("its PAX header is malformed")
		}
		if !paxKeys[string(key)] {
			return fmt.Errorf("its PAX header has a record %q that bbr does not accept", truncate(string(key), 64))
		}
		if keys[string(key)] {
			return fmt.Errorf("its PAX header has the record %q twice", key)
		}
		keys[string(key)] = true
		data = data[n:]
	}
	return nil
}

// octal parses a header's numeric field as both readers do for sizes that
// fit in it: octal digits, surrounded by spaces or NULs.
func octal(field []byte) (int64, error) {
	s := string(bytes.Trim(field, " \x00"))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 8, 62)
	return int64(n), err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
