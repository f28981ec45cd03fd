package artifact

import (
	"context"
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
	"sync"

	"golang.org/x/sync/errgroup"
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

// checkWritten, as a backup is about to be marked good (d.mu held), finds
// what went from under it (see CheckWritten).
func (d *Dir) checkWritten() error {
	return CheckWritten(context.Background(), d.written.Expected(d.meta),
		func(_ context.Context, name string) (int64, string, error) {
			size, why, err := statStored(d.Path, name)
			if err != nil {
				why = err.Error() // a file that cannot be examined is not as written
			}
			return size, why, nil
		})
}

// Written is what a backup's writer stored whole, by name and size; its
// writer guards it with its own lock.
type Written map[string]int64

// UnknownSize is the size Expected gives a file the metadata names that
// the writer did not store: it must exist, whatever its size.
const UnknownSize = -1

// Record notes a file stored whole.
func (w *Written) Record(name string, size int64) {
	if *w == nil {
		*w = Written{}
	}
	(*w)[name] = size
}

// Expected is every file a backup must hold before it is marked good:
// those written, by size, and those meta names.
func (w Written) Expected(meta Metadata) map[string]int64 {
	out := map[string]int64(maps.Clone(w))
	if out == nil {
		out = map[string]int64{}
	}
	for _, name := range StoredNames(meta) {
		if _, ok := out[name]; !ok {
			out[name] = UnknownSize
		}
	}
	return out
}

// StatFunc gives a stored file's size, or why it is not a stored file
// ("missing", ...), or the error that kept it from telling.
type StatFunc func(ctx context.Context, name string) (size int64, why string, err error)

// CheckWritten stats every expected file, up to 16 at once, as a backup
// is about to be marked good: another run's retention, or an operator,
// may have removed or replaced one while it was written, and the backup
// must then not be marked good. It returns stat's first error, or the
// files that went or changed.
func CheckWritten(ctx context.Context, expected map[string]int64, stat StatFunc) error {
	var mu sync.Mutex
	var changed []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, name := range slices.Sorted(maps.Keys(expected)) {
		g.Go(func() error {
			size, why, err := stat(gctx, name)
			if err != nil {
				return err
			}
			if want := expected[name]; why == "" && want != UnknownSize && size != want {
				why = fmt.Sprintf("%d bytes, %d written", size, want)
			}
			if why != "" {
				mu.Lock()
				changed = append(changed, name+" ("+why+")")
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(changed) == 0 {
		return nil
	}
	slices.Sort(changed)
	return fmt.Errorf("files of the backup went or changed while it was written (removed by another run's retention, or by hand?): %s", strings.Join(changed, ", "))
}
