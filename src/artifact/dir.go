package artifact

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ioBufferSize is per transfer: many run at once, so it stays small (the
// SSH channel window, 2 MiB, already smooths the stream).
const ioBufferSize = 256 << 10

// Dir is an artifact directory being written (backup) or read (restore).
// Its methods are safe for concurrent use by parallel drains.
//
// A backup is written under <name>_<ts>.in-progress and gets its final
// name <name>_<ts> (upstream's) only in Finish, when it succeeded; a failed
// one becomes <name>_<ts>.failed with a FAILED file saying why. A crash
// leaves the .in-progress name. Open refuses all but the final form, so a
// partial backup can never be taken for a good one.
type Dir struct {
	Path string

	final   string // the name a successful backup gets
	mu      sync.Mutex
	meta    Metadata
	written Written // the files written, by size: Finish checks them
}

// Suffixes of artifact directories that are not (yet) good backups.
const (
	InProgressSuffix = ".in-progress"
	FailedSuffix     = ".failed"
	// FailedFile, inside a failed backup, says why it failed.
	FailedFile = "FAILED"
)

// Create makes <parent>/<name>_<UTC timestamp>.in-progress (mode 0700) and
// writes its metadata with the start time. parent must be an existing
// directory.
func Create(parent, name string, now time.Time) (*Dir, error) {
	return create(parent, BackupName(name, now), now)
}

func create(parent, backup string, now time.Time) (*Dir, error) {
	info, err := os.Stat(parent)
	if err != nil || !info.IsDir() {
		return nil, fmt.Errorf("artifact path %s is not a directory", parent)
	}
	final := filepath.Join(parent, backup)
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("creating artifact directory: %s already exists", final)
	}
	dir := final + InProgressSuffix
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating artifact directory: %w", err)
	}
	d := &Dir{Path: dir, final: final, meta: NewMetadata(now)}
	if err := reserveFailedFile(dir); err != nil {
		return nil, err
	}
	return d, d.save()
}

// failedReserve is the room the FAILED file is created with, so that a
// backup that fails on a full disk can still say why.
const failedReserve = 4096

// reserveFailedFile creates the FAILED file before anything else is
// written: it says the backup is not (yet) good, and holds the blocks its
// reason is later written into. A good backup's Finish removes it.
func reserveFailedFile(dir string) error {
	note := "This backup is in progress, or was interrupted: do not restore it.\n"
	raw := append([]byte(note), bytes.Repeat([]byte{'\n'}, failedReserve-len(note))...)
	if err := os.WriteFile(filepath.Join(dir, FailedFile), raw, 0o600); err != nil {
		return fmt.Errorf("creating artifact directory: %w", err)
	}
	return nil
}

// writeFailedFile writes the reason into the reserved FAILED file, in
// place (no new blocks are needed), cut to the reserve.
func writeFailedFile(dir string, failure error) error {
	note := []byte("This backup failed and is incomplete: do not restore it.\n" + failure.Error() + "\n")
	if len(note) > failedReserve {
		note = append(note[:failedReserve-4], "...\n"...)
	}
	f, err := os.OpenFile(filepath.Join(dir, FailedFile), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(note, 0); err != nil {
		return err
	}
	if err := f.Truncate(int64(len(note))); err != nil {
		return err
	}
	return f.Sync()
}

// Open reads an existing artifact's metadata and checks it is well formed.
// It refuses a backup that failed or never finished.
func Open(path string) (*Dir, error) {
	info, err := os.Stat(path)
	if err != nil || !info.IsDir() {
		return nil, fmt.Errorf("artifact path %s is not a directory", path)
	}
	clean := filepath.Clean(path)
	if strings.HasSuffix(clean, InProgressSuffix) {
		return nil, fmt.Errorf("%s is an incomplete backup (still running, or interrupted) and cannot be restored", path)
	}
	// The .failed name is enough: a full disk may have kept the FAILED
	// file from saying why.
	raw, _ := readRegular(filepath.Join(path, FailedFile), failedReserve)
	if _, err := os.Lstat(filepath.Join(path, FailedFile)); err == nil || strings.HasSuffix(clean, FailedSuffix) {
		return nil, fmt.Errorf("%s is a failed backup and cannot be restored: %s", path, firstLine(string(raw)))
	}
	m, err := readMetadata(path)
	if err != nil {
		return nil, err
	}
	return &Dir{Path: path, meta: m}, nil
}

// Metadata returns a copy of the current metadata.
func (d *Dir) Metadata() Metadata {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.meta
	m.Encodings = maps.Clone(m.Encodings) // the writer's map changes
	return m
}

// Create opens a new tar file in the artifact for writing (mode 0600).
func (d *Dir) CreateFile(name string) (*os.File, error) {
	if !validName(name) {
		return nil, fmt.Errorf("invalid artifact file name %q", name)
	}
	f, err := os.OpenFile(filepath.Join(d.Path, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating artifact file: %w", err)
	}
	return f, nil
}

// WriteTar copies a tar stream into the artifact file name, hashing every
// file as it passes (one pass, no re-read), and returns the checksums. The
// file is synced before it returns.
func (d *Dir) WriteTar(name string, r io.Reader) (Checksums, int64, error) {
	var sums Checksums
	n, err := d.writeFile(name, func(w io.Writer) (err error) {
		sums, err = SumTar(io.TeeReader(r, w))
		return err
	})
	return sums, n, err
}

// Put stores r as the artifact file name, as it is, synced. A reader
// with WriteTo (a transform's stage) writes from its own slices.
func (d *Dir) Put(name string, r io.Reader) (int64, error) {
	return d.writeFile(name, func(w io.Writer) error {
		if wt, ok := r.(io.WriterTo); ok {
			_, err := wt.WriteTo(w)
			return err
		}
		_, err := io.CopyBuffer(w, r, make([]byte, ioBufferSize))
		return err
	})
}

// writeFile creates the artifact file name (0600), lets fill write it,
// and syncs it; it returns the bytes written.
func (d *Dir) writeFile(name string, fill func(io.Writer) error) (int64, error) {
	f, err := d.CreateFile(name)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(newWritebackWriter(f), ioBufferSize)
	counter := &countingWriter{w: w}
	err = fill(counter)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return counter.n, fmt.Errorf("writing %s: %w", name, err)
	}
	d.mu.Lock()
	d.written.Record(name, counter.n)
	d.mu.Unlock()
	return counter.n, nil
}

// RecordEncoding records how file is stored and saves the metadata.
func (d *Dir) RecordEncoding(file string, e Encoding) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.meta.SetEncoding(file, e)
	return d.save()
}

// AddInstanceArtifact records a job artifact's checksums and saves the metadata.
func (d *Dir) AddInstanceArtifact(group string, index int, job string, sums Checksums) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.meta.AddInstanceArtifact(group, index, job, sums)
	return d.save()
}

// AddCustomArtifact records a custom artifact's checksums and saves the metadata.
func (d *Dir) AddCustomArtifact(name string, sums Checksums) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.meta.AddCustomArtifact(name, sums)
	return d.save()
}

// Finish records the finish time and gives the backup its final name:
// <name>_<ts> when failure is nil, else <name>_<ts>.failed with a FAILED
// file holding the reason. Path is updated either way.
func (d *Dir) Finish(now time.Time, failure error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	wasGood := failure == nil
	d.meta.SetFinishTime(now)
	if err := d.meta.Check(); err != nil && failure == nil {
		failure = err
	}
	if err := d.save(); err != nil && failure == nil {
		failure = err
	}
	// The tars were synced as written; the metadata, the manifest and the
	// directory's own entries must reach the disk too before the backup
	// counts.
	if err := d.syncFiles(); err != nil && failure == nil {
		failure = err
	}
	if failure == nil {
		failure = d.checkWritten()
	}
	if failure == nil {
		// The in-progress mark goes, and the directory's entries reach
		// the disk, before the backup gets its good name.
		failure = os.Remove(filepath.Join(d.Path, FailedFile))
		if failure == nil {
			failure = syncPath(d.Path)
		}
	}
	target := d.final
	var markErr error
	if wasGood && failure != nil {
		// The caller thinks the backup good: it must learn it is not.
		markErr = fmt.Errorf("the backup could not be marked good, so it is marked failed: %w", failure)
	}
	if failure != nil {
		// The name is the mark that always works; the file says why.
		target = d.final + FailedSuffix
		if err := writeFailedFile(d.Path, failure); err != nil {
			markErr = errors.Join(markErr, fmt.Errorf("writing the reason into the failed artifact: %w", err))
		}
		_ = syncPath(d.Path)
	}
	if err := os.Rename(d.Path, target); err != nil {
		return errors.Join(markErr, fmt.Errorf("naming the artifact %s: %w", target, err))
	}
	d.Path = target
	return errors.Join(markErr, syncPath(filepath.Dir(target)))
}

// syncFiles fsyncs the metadata and, when saved, the manifest.
func (d *Dir) syncFiles() error {
	if err := syncPath(filepath.Join(d.Path, MetadataFile)); err != nil {
		return err
	}
	if err := syncPath(filepath.Join(d.Path, ManifestFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// syncPath fsyncs a file or a directory (for the names in it).
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}

// FailureReason is the reason a FAILED file (or object) gives.
func FailureReason(failed string) string { return firstLine(failed) }

func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "This backup failed") {
			return strings.TrimSpace(line)
		}
	}
	return "its FAILED file does not say why (see the bbr error log of that run)"
}

// RecordLockWindow records when locking started and unlocking finished.
func (d *Dir) RecordLockWindow(locked, unlocked time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.meta.SetLockWindow(locked, unlocked)
	return d.save()
}

// SaveManifest writes the deployment manifest next to the tars (0600: it
// holds the deployment's credentials).
func (d *Dir) SaveManifest(manifest string) error {
	if err := writeFileAtomic(filepath.Join(d.Path, ManifestFile), []byte(manifest)); err != nil {
		return err
	}
	d.mu.Lock()
	d.written.Record(ManifestFile, int64(len(manifest)))
	d.mu.Unlock()
	return nil
}

// save writes the metadata atomically; callers hold d.mu (or own d alone).
func (d *Dir) save() error {
	raw, err := d.meta.Marshal()
	if err != nil {
		return fmt.Errorf("encoding artifact metadata: %w", err)
	}
	return writeFileAtomic(filepath.Join(d.Path, MetadataFile), raw)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// contextReader fails reads once ctx is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
