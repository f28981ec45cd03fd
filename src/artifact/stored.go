package artifact

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// A backup's files are regular files. Anything else there (a symbolic
// link to /dev/zero, a FIFO) was put there by someone else: reading it
// could never end, or read what is not the backup.

// errNotRegular is a stored file that is not a regular file.
var errNotRegular = errors.New("a backup holds only regular files")

func notRegular(path string, mode fs.FileMode) error {
	return fmt.Errorf("%s is not a regular file (%s): %w", filepath.Base(path), fileType(mode), errNotRegular)
}

func fileType(mode fs.FileMode) string {
	switch t := mode.Type(); {
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeDevice != 0:
		return "device"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDir != 0:
		return "directory"
	default:
		return "mode " + t.String()
	}
}

// checkRegular keeps f if it is a regular file, else closes it.
func checkRegular(f *os.File) (*os.File, error) {
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = notRegular(f.Name(), info.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readRegular reads a small regular file whole, refusing one larger
// than limit.
func readRegular(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(raw)) > limit {
		err = fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), limit)
	}
	return raw, err
}

// storedNames are the names of the files meta says the backup stores:
// every tar, and the manifest when it is encoded (a plain manifest is
// optional, as upstream's).
func storedNames(meta Metadata) []string {
	var names []string
	for file := range meta.Files() {
		names = append(names, meta.StoredName(file))
	}
	if _, ok := meta.Encodings[ManifestFile]; ok {
		names = append(names, meta.StoredName(ManifestFile))
	}
	sort.Strings(names)
	return names
}

// lacking lists, as "name (why)", each file meta names that dir does
// not hold as a regular file.
func lacking(dir string, meta Metadata) []string {
	var out []string
	for _, name := range storedNames(meta) {
		info, err := os.Lstat(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, name+" (missing)")
		case err != nil:
			out = append(out, fmt.Sprintf("%s (%v)", name, err))
		case !info.Mode().IsRegular():
			out = append(out, name+" (not a regular file)")
		}
	}
	return out
}

// errLacking says which files a backup lacks.
func errLacking(lacks []string) error {
	return fmt.Errorf("its metadata names files it lacks: %s", strings.Join(lacks, ", "))
}
