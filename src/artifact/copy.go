package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"time"
)

// maxManifest bounds a manifest copied between destinations.
const maxManifest = 64 << 20

// Copy writes the good backup src, named name, to dst as it is stored:
// plain tars are checked against their checksums as they stream, and
// compressed or encrypted files (copied unchanged, no key needed)
// against their stored CRC-64. The copy is good only when each one
// matches (and is then marked good, metadata last, as a backup is). It
// returns the copy's location.
func Copy(ctx context.Context, src Source, name string, dst Destination) (string, error) {
	return copyBackup(ctx, src, name, dst, true)
}

// Export writes src's plain backup to dst, in upstream's format: every
// file as its plain content, checked against its checksums. src must
// decode what it stores compressed or encrypted (transform.Decode).
func Export(ctx context.Context, src Source, name string, dst Destination) (string, error) {
	return copyBackup(ctx, src, name, dst, false)
}

// errCopyStopped marks a copy that never reached its end (a panic
// unwinding, an early return that forgot its error).
var errCopyStopped = errors.New("bbr stopped before every file of the backup was copied")

func copyBackup(ctx context.Context, src Source, name string, dst Destination, asStored bool) (location string, err error) {
	meta := src.Metadata()
	w, err := dst.Create(ctx, name, parseTime(meta.BackupActivity.StartTime))
	if err != nil {
		return "", err
	}
	// Only a copy that ran to its end is good, as only a complete drain
	// makes a good backup: a panic unwinding through here leaves err nil.
	copied := false
	defer func() {
		failure := err
		if !copied && failure == nil {
			failure = errCopyStopped
		}
		if ferr := w.Finish(parseTime(meta.BackupActivity.FinishTime), failure); ferr != nil {
			err = errors.Join(err, ferr)
		}
		location = w.Location()
	}()
	if err := copyFiles(ctx, src, w, meta, asStored); err != nil {
		return "", err
	}
	copied = true
	return "", nil
}

// copyFiles copies every file of src's backup into w, and what its
// metadata records.
func copyFiles(ctx context.Context, src Source, w Writer, meta Metadata, asStored bool) error {
	stored := func(file string) (Encoding, bool) {
		e, ok := meta.Encodings[file]
		return e, ok && asStored
	}
	files := meta.Files()
	for _, file := range sortedNames(files) {
		var err error
		if e, ok := stored(file); ok {
			err = copyStored(ctx, src, w, file, e)
		} else {
			err = copyTar(ctx, src, w, file, files[file])
		}
		if err != nil {
			return err
		}
	}
	if err := recordAll(w, meta); err != nil {
		return err
	}
	if e, ok := stored(ManifestFile); ok {
		return copyStored(ctx, src, w, ManifestFile, e)
	}
	_, encoded := meta.Encodings[ManifestFile]
	return copyManifest(ctx, src, w, encoded)
}

// copyStored copies the stored bytes of file unchanged, checking them
// against e, and records e in the copy's metadata.
func copyStored(ctx context.Context, src Source, w Writer, file string, e Encoding) error {
	if err := readStored(ctx, src, file, e, w.Put); err != nil {
		return err
	}
	return w.RecordEncoding(file, e)
}

// readStored streams file's stored bytes into put and checks them
// against e's size and CRC-64.
func readStored(ctx context.Context, src Source, file string, e Encoding, put func(string, io.Reader) (int64, error)) error {
	name := e.StoredName(file)
	r, err := src.Open(ctx, name)
	if err != nil {
		return err
	}
	defer r.Close()
	h := NewStoredHash()
	n, err := put(name, io.TeeReader(contextReader{ctx, r}, h))
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return e.check(name, n, h)
}

func copyTar(ctx context.Context, src Source, w Writer, file string, want Checksums) error {
	r, err := src.Open(ctx, file)
	if err != nil {
		return err
	}
	defer r.Close()
	got, _, err := w.WriteTar(file, r)
	if err != nil {
		return err
	}
	if diff := Compare(want, got); diff != nil {
		return fmt.Errorf("backup is corrupted: checksums don't match for %s: %v", file, diff)
	}
	return nil
}

// recordAll gives w the artifacts and the lock window meta records.
func recordAll(w Writer, meta Metadata) error {
	for _, inst := range meta.Instances {
		index, err := strconv.Atoi(inst.Index)
		if err != nil {
			return fmt.Errorf("instance %s has index %q: %w", inst.Name, inst.Index, err)
		}
		for _, a := range inst.Artifacts {
			if err := w.AddInstanceArtifact(inst.Name, index, a.Name, a.Checksums); err != nil {
				return err
			}
		}
	}
	for _, a := range meta.CustomArtifacts {
		if err := w.AddCustomArtifact(a.Name, a.Checksums); err != nil {
			return err
		}
	}
	if locked, unlocked, ok := meta.BackupActivity.LockTimes(); ok {
		return w.RecordLockWindow(locked, unlocked)
	}
	return nil
}

// copyManifest copies the plain manifest, if the backup has one.
func copyManifest(ctx context.Context, src Source, w Writer, required bool) error {
	r, err := src.Open(ctx, ManifestFile)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	// One byte past the limit tells a manifest that is too big from one
	// that fits: a truncated manifest must not pass for the deployment's.
	raw, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", ManifestFile, err)
	}
	if len(raw) > maxManifest {
		return fmt.Errorf("%s is larger than %d MiB, the most a copy takes: not copied", ManifestFile, maxManifest>>20)
	}
	return w.SaveManifest(string(raw))
}

// parseTime reads a backup_activity time, or is now when it cannot.
func parseTime(s string) time.Time {
	if t, err := time.Parse(TimeFormat, s); err == nil {
		return t
	}
	return time.Now()
}
