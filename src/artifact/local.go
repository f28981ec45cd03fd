package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Local is a directory of backups, as bbr has always written them:
// <dir>/<deployment>_<timestamp>, with .in-progress or .failed until (or
// unless) the backup is good.
type Local struct{ Dir string }

func (l Local) String() string { return l.Dir }

// Create starts the backup in <dir>/<backup>.in-progress (see Dir).
func (l Local) Create(_ context.Context, backup string, start time.Time) (Writer, error) {
	if err := CheckBackupName(backup); err != nil {
		return nil, err
	}
	return create(l.Dir, backup, start)
}

// List reads the directory. A backup is good only under its final name
// and when it opens (metadata valid, no FAILED file).
func (l Local) List(_ context.Context) ([]Stored, error) {
	entries, err := os.ReadDir(l.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Stored
	for _, e := range entries {
		deployment, t, ok := ParseBackupName(BackupBase(e.Name()))
		if !e.IsDir() || !ok {
			continue
		}
		out = append(out, l.stat(e.Name(), deployment, t))
	}
	SortNewestFirst(out)
	return out, nil
}

func (l Local) stat(name, deployment string, t time.Time) Stored {
	b := Stored{Name: name, Deployment: deployment, Time: t}
	path := filepath.Join(l.Dir, name)
	b.Size, _ = DirSize(path)
	dir, err := Open(path)
	if err == nil {
		b.Transforms = dir.Metadata().Transforms()
	}
	_, markerErr := os.Lstat(filepath.Join(path, FailedFile))
	var lacks []string
	if err == nil {
		lacks, err = lacking(path, dir.Metadata())
	}
	switch {
	case len(lacks) > 0:
		// Half deleted, or damaged: never good, so retention removes it.
		b.State, b.Why = Failed, errLacking(lacks)
	case err == nil:
		b.State = Good
	case errors.Is(err, errNoMetadata):
		// Never good: an upstream bbr still running (it writes the
		// metadata last), an interrupted one, or a delete cut short
		// (Delete removes the metadata first). Retention treats it as
		// the bucket treats a backup without metadata.
		b.State, b.Why = InProgress, err
	case strings.HasSuffix(name, InProgressSuffix):
		b.State, b.Why = InProgress, err
	case markerErr == nil || strings.HasSuffix(name, FailedSuffix):
		b.State, b.Why = Failed, err
	default:
		b.State, b.Why = Unreadable, err
	}
	return b
}

// Open opens <dir>/<name>; a backup of that name that failed or never
// finished is refused with the reason.
func (l Local) Open(_ context.Context, name string) (Source, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%q is not a backup's name", name)
	}
	path := filepath.Join(l.Dir, name)
	if _, err := os.Stat(path); err == nil {
		return Open(path)
	}
	for _, suffix := range []string{FailedSuffix, InProgressSuffix} {
		if _, err := os.Stat(path + suffix); err == nil {
			return Open(path + suffix)
		}
	}
	return nil, fmt.Errorf("there is no backup %s at %s", name, l.Dir)
}

// Delete removes <dir>/<name>. The metadata goes first, and alone, as
// in a bucket: a delete cut short must not leave a backup that looks
// good with some of its files gone.
func (l Local) Delete(_ context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("%q is not a backup's name", name)
	}
	path := filepath.Join(l.Dir, name)
	if err := os.Remove(filepath.Join(path, MetadataFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := syncPath(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return removeAll(path)
}

// removeAll is os.RemoveAll; specs cut it short.
var removeAll = os.RemoveAll

// BackupBase is the backup name a directory entry stands for: its name
// without the .failed or .in-progress the state gives it.
func BackupBase(entry string) string {
	return strings.TrimSuffix(strings.TrimSuffix(entry, FailedSuffix), InProgressSuffix)
}

// CheckSpace is the free-space check before locking (see CheckSpace).
func (l Local) CheckSpace(deployment string) (skipped string, err error) {
	return CheckSpace(l.Dir, deployment)
}

// SortNewestFirst sorts backups by their time, newest first.
func SortNewestFirst(all []Stored) {
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.After(all[j].Time) })
}

// Location is the artifact's directory.
func (d *Dir) Location() string { return d.Path }

// Open opens one of the artifact's files for reading.
func (d *Dir) Open(_ context.Context, file string) (io.ReadCloser, error) {
	if !validName(file) {
		return nil, fmt.Errorf("invalid artifact file name %q", file)
	}
	f, err := openRegular(filepath.Join(d.Path, file))
	if errors.Is(err, errNotRegular) {
		return nil, err // it names the file
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", file, err)
	}
	return f, nil
}

// Files lists the files in the artifact directory, with their sizes.
func (d *Dir) Files() (map[string]int64, error) {
	entries, err := os.ReadDir(d.Path)
	if err != nil {
		return nil, err
	}
	files := map[string]int64{}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		files[e.Name()] = info.Size()
	}
	return files, nil
}

// Size is the size of one of the artifact's files (0 when unknown).
func (d *Dir) Size(file string) int64 {
	if !validName(file) {
		return 0
	}
	if info, err := os.Lstat(filepath.Join(d.Path, file)); err == nil && info.Mode().IsRegular() {
		return info.Size()
	}
	return 0
}
