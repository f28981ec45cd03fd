package artifact

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// MaxEntryName is the longest entry name (and link target) SumTar accepts:
// Linux's PATH_MAX. The instance's checksum tools open files by that path,
// so nothing longer can be backed up or verified anyway.
const MaxEntryName = 4096

// SumTar reads a tar stream to its end, checks that every entry is safe to
// extract into the artifact's staging directory, and returns the sha256 of
// every regular file, keyed by its path the way upstream keys them
// ("./a/b", whether or not the entry name starts with "./"). Hard links
// carry the checksum of their target, as `find -type f` on the instance
// hashes both names. It reads everything, including the
// padding after the end-of-archive marker, so a caller teeing the stream
// into a file gets all of it.
//
// The same rules hold for backup (the stream from the instance) and
// restore (Verify, before anything is locked or uploaded), so bbr never
// writes an artifact it would refuse to restore. An entry is accepted only
// if:
//   - its name is a clean relative path, "./" first or not (no "..", no
//     ".", no "//", not absolute, no NUL, at most MaxEntryName bytes); the
//     root "./" itself must be a directory; a directory may end in "/";
//   - it is a regular file, a directory, a hard link to a regular file
//     earlier in the stream, or a symbolic link;
//   - no entry lies below a symbolic link, so nothing is written through
//     one. A link's target may point anywhere, as in upstream's artifacts:
//     GNU tar on the instance creates links without following them, and
//     with nothing below a link and hard links only to files in the
//     stream, no entry can reach outside the staging directory;
//   - a name appears once (directories may repeat);
//   - it is not setuid, and not setgid unless a directory;
//   - it is not sparse (a few bytes could claim exabytes of holes);
//   - its raw headers read the same to Go's archive/tar and to GNU tar,
//     which extracts it on the instance (tarheaders.go);
//   - the stream ends with tar's end-of-archive marker (two zero blocks):
//     a tar cut short at a block boundary otherwise reads as complete.
//
// Device files, FIFOs, sockets-like types, GNU volume/multi-volume/sparse
// headers and pax global headers are refused.
func SumTar(r io.Reader) (Checksums, error) {
	sums := Checksums{}
	s := newTarScanner(r, io.Discard)
	buf := make([]byte, ioBufferSize)
	for {
		hdr, err := s.next(sums)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		_ = s.rec.flush() // to io.Discard: only the headers' blocks are kept
		switch hdr.Typeflag {
		case tar.TypeReg:
			sum, err := hashEntry(s.tr, s.rec, buf)
			if err != nil {
				return nil, fmt.Errorf("reading %s from tar stream: %w", hdr.Name, err)
			}
			sums[fileKey(hdr.Name)] = sum
		case tar.TypeLink:
			sums[fileKey(hdr.Name)] = sums[fileKey(hdr.Linkname)]
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, fmt.Errorf("reading end of tar stream: %w", err)
	}
	return sums, nil
}

// tarValidator holds what it has seen of a stream: enough to refuse names
// that repeat and entries below symbolic links, in either order.
type tarValidator struct {
	kinds   map[string]byte // clean relative path -> typeflag
	parents map[string]bool // every proper ancestor of an entry
}

func newTarValidator() *tarValidator {
	return &tarValidator{kinds: map[string]byte{}, parents: map[string]bool{}}
}

func (v *tarValidator) check(hdr *tar.Header, sums Checksums) error {
	name := hdr.Name
	if len(name) > MaxEntryName {
		return fmt.Errorf("tar entry %q... has a name longer than %d bytes", name[:64], MaxEntryName)
	}
	isDir := hdr.Typeflag == tar.TypeDir
	rel, ok := entryPath(name, isDir)
	if !ok {
		return fmt.Errorf("tar entry %q escapes the artifact directory or is not a clean ./ path", name)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir:
	case tar.TypeLink:
		if _, ok := sums[fileKey(hdr.Linkname)]; !ok {
			return fmt.Errorf("tar entry %q links to %q, which is not a regular file in the stream before it", name, hdr.Linkname)
		}
	case tar.TypeSymlink:
		if t := hdr.Linkname; t == "" || len(t) > MaxEntryName || strings.ContainsRune(t, 0) {
			return fmt.Errorf("tar entry %q is a symbolic link with an empty, NUL-bearing or overlong target", name)
		}
	default:
		return fmt.Errorf("tar entry %q has type %s: only regular files, directories and links are allowed", name, typeName(hdr.Typeflag))
	}
	if rel == "." && !isDir {
		return fmt.Errorf("tar entry %q: the artifact root must be a directory", name)
	}
	if hdr.Mode&0o4000 != 0 || hdr.Mode&0o2000 != 0 && !isDir {
		return fmt.Errorf("tar entry %q is setuid or setgid (mode %o)", name, hdr.Mode)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("tar entry %q is a sparse file, which bbr does not accept", name)
		}
	}
	if prev, seen := v.kinds[rel]; seen && !(isDir && prev == tar.TypeDir) {
		return fmt.Errorf("tar entry %q appears twice in the stream", name)
	}
	if v.parents[rel] && !isDir {
		return fmt.Errorf("tar entry %q is not a directory but other entries lie below it", name)
	}
	if rel != "." {
		for p := path.Dir(rel); p != "."; p = path.Dir(p) {
			if k := v.kinds[p]; k != 0 && k != tar.TypeDir {
				return fmt.Errorf("tar entry %q lies below %q, which is not a directory", name, "./"+p)
			}
			if v.parents[p] {
				break // its ancestors were recorded and checked already
			}
			v.parents[p] = true
		}
	}
	v.kinds[rel] = hdr.Typeflag
	return nil
}

// entryPath checks a tar entry name and returns it relative to the root,
// clean ("." for the root). Names must be a clean relative path, with or
// without the "./" that `tar -C dir -c .` writes; a directory may end in
// "/".
func entryPath(name string, isDir bool) (string, bool) {
	if name == "." || name == "./" {
		return ".", true
	}
	if isDir && strings.HasSuffix(name, "/") {
		name = name[:len(name)-1]
	}
	rel := strings.TrimPrefix(name, "./")
	if !cleanRelative(rel) {
		return "", false
	}
	return rel, true
}

// cleanRelative says whether p is a non-empty relative path in clean form
// with no "." or ".." component, no NUL and no component longer than
// NAME_MAX.
func cleanRelative(p string) bool {
	if p == "" || p == "." || p == ".." || path.Clean(p) != p ||
		strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || strings.ContainsRune(p, 0) {
		return false
	}
	// No file system holds a longer name (NAME_MAX): tar -x on the
	// instance would fail on it part-way through a restore.
	for _, c := range strings.Split(p, "/") {
		if len(c) > MaxNameComponent {
			return false
		}
	}
	return true
}

// MaxNameComponent is Linux's NAME_MAX.
const MaxNameComponent = 255

// fileKey is the checksum key of a regular file's entry name: "./" and
// its clean relative path, as `find .` on the instance prints it.
func fileKey(name string) string {
	rel, ok := entryPath(name, false)
	if !ok {
		return "" // never a key: every key is a checked name
	}
	return "./" + rel
}

// ValidFileName says whether name is a regular file's path as the artifact
// metadata and the instance's checksum tools write it: "./" and a clean
// relative path of at most MaxEntryName bytes.
func ValidFileName(name string) bool {
	return validEntryName(name)
}

// validEntryName accepts the names of regular files: "./" followed by a
// clean relative path that stays inside the directory they are extracted to.
func validEntryName(name string) bool {
	if len(name) > MaxEntryName || !strings.HasPrefix(name, "./") {
		return false
	}
	rel, ok := entryPath(name, false)
	return ok && rel != "."
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeCont:
		return "contiguous file"
	case tar.TypeXGlobalHeader:
		return "pax global header"
	case tar.TypeGNUSparse:
		return "GNU sparse file"
	case 'V':
		return "GNU volume header"
	case 'M':
		return "GNU multi-volume continuation"
	}
	return fmt.Sprintf("%q", t)
}

// Diff names files whose checksums differ, sorted.
type Diff []string

// String lists the first ten names, and how many more there are.
func (d Diff) String() string {
	const shown = 10
	if len(d) <= shown {
		return fmt.Sprint([]string(d))
	}
	return fmt.Sprintf("%v and %d more", []string(d[:shown]), len(d)-shown)
}

// Compare reports the files whose checksums differ between want and got, or
// that only one side has, sorted; nil when they match.
func Compare(want, got Checksums) Diff {
	var diff Diff
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
