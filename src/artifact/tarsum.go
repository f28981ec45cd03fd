package artifact

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// SumTar reads a tar stream to its end and returns the sha256 of every
// regular file, keyed by entry name, the way upstream keys them ("./a/b").
// Hard links carry the checksum of their target, as `find -type f` on the
// instance hashes both names. It reads everything, including the padding
// after the end-of-archive marker, so a caller teeing the stream into a file
// gets all of it.
func SumTar(r io.Reader) (Checksums, error) {
	sums := Checksums{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar stream: %w", err)
		}
		if !validEntryName(hdr.Name) {
			return nil, fmt.Errorf("tar entry %q escapes the artifact directory", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				return nil, fmt.Errorf("reading %s from tar stream: %w", hdr.Name, err)
			}
			sums[hdr.Name] = hex.EncodeToString(h.Sum(nil))
		case tar.TypeLink:
			target, ok := sums[hdr.Linkname]
			if !ok {
				return nil, fmt.Errorf("tar entry %q links to %q, which is not in the stream before it", hdr.Name, hdr.Linkname)
			}
			sums[hdr.Name] = target
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, fmt.Errorf("reading end of tar stream: %w", err)
	}
	return sums, nil
}

// validEntryName accepts relative, clean-enough paths that stay inside the
// directory they are extracted to.
func validEntryName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return false
	}
	clean := path.Clean(name)
	return clean != ".." && !strings.HasPrefix(clean, "../")
}

// Compare reports the files whose checksums differ between want and got, or
// that only one side has, sorted; nil when they match.
func Compare(want, got Checksums) []string {
	var diff []string
	for name, sum := range want {
		if got[name] != sum {
			diff = append(diff, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diff = append(diff, name)
		}
	}
	sort.Strings(diff)
	return diff
}
