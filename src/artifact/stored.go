package artifact

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// StoredNames are the names of the files meta says the backup stores:
// every tar, and the manifest when it is encoded (a plain manifest is
// optional, as upstream's).
func StoredNames(meta Metadata) []string {
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
// not hold as a regular file. A file it cannot tell about (an I/O
// error, a permission) is an error instead: the backup may be good.
func lacking(dir string, meta Metadata) ([]string, error) {
	var out []string
	for _, name := range StoredNames(meta) {
		_, why, err := statStored(dir, name)
		if err != nil {
			return nil, err
		}
		if why != "" {
			out = append(out, name+" ("+why+")")
		}
	}
	return out, nil
}

// statStored is the size of dir's file name, or why it is not a stored
// file (missing, or not a regular file), or the error that kept it from
// telling.
func statStored(dir, name string) (size int64, why string, err error) {
	info, err := os.Lstat(filepath.Join(dir, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, "missing", nil
	case err != nil:
		return 0, "", err
	case !info.Mode().IsRegular():
		return 0, "not a regular file", nil
	}
	return info.Size(), "", nil
}

// errLacking says which files a backup lacks.
func errLacking(lacks []string) error {
	return fmt.Errorf("its metadata names files it lacks: %s", strings.Join(lacks, ", "))
}

// recordWritten notes a file written whole, for checkWritten.
func (d *Dir) recordWritten(name string, size int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.written == nil {
		d.written = map[string]int64{}
	}
	d.written[name] = size
}

// checkWritten, as a backup is about to be marked good (d.mu held), finds
// what went from under it: every file written is still there with the
// size written, and every file the metadata names is there. Another
// run's retention, or an operator, may have removed it meanwhile.
func (d *Dir) checkWritten() error {
	names := append(StoredNames(d.meta), slices.Collect(maps.Keys(d.written))...)
	slices.Sort(names)
	var changed []string
	for _, name := range slices.Compact(names) {
		size, why, err := statStored(d.Path, name)
		if err != nil {
			why = err.Error()
		}
		if want, ok := d.written[name]; ok && why == "" && size != want {
			why = fmt.Sprintf("%d bytes, %d written", size, want)
		}
		if why != "" {
			changed = append(changed, name+" ("+why+")")
		}
	}
	return FilesChanged(changed)
}

// FilesChanged says which files of a backup went or changed while it was
// written ("name (why)" each), or is nil when none did.
func FilesChanged(changed []string) error {
	if len(changed) == 0 {
		return nil
	}
	return fmt.Errorf("files of the backup went or changed while it was written (removed by another run's retention, or by hand?): %s", strings.Join(changed, ", "))
}
