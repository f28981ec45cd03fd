package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
)

// writer is a backup being written to the bucket. Its metadata stays in
// memory until Finish writes it, last, when everything else is stored.
// It keeps the context Create was given: artifact.Writer's methods take
// none, as the local directory needs none.
type writer struct {
	d      *Destination
	ctx    context.Context
	backup string

	mu      sync.Mutex
	meta    artifact.Metadata
	written artifact.Written // the objects stored, by size: Finish checks them
}

func (w *writer) Location() string { return w.d.String() + "/" + w.backup }

// WriteTar streams r into the bucket through the checksums: nothing is
// kept on local disk, and only the shared part buffers in memory.
func (w *writer) WriteTar(file string, r io.Reader) (artifact.Checksums, int64, error) {
	pr, pw := io.Pipe()
	type result struct {
		n   int64
		err error
	}
	uploaded := make(chan result, 1)
	go func() {
		n, err := w.Put(file, pr)
		pr.CloseWithError(errors.Join(err, errUploadStopped)) // unblocks the hashing
		uploaded <- result{n, err}
	}()
	sums, err := artifact.SumTar(io.TeeReader(r, pw))
	pw.CloseWithError(err) // the upload ends with the stream, or fails with it
	res := <-uploaded
	// A stream that failed first is the cause: the upload failed with it.
	switch {
	case err != nil && !errors.Is(err, errUploadStopped):
		return nil, res.n, fmt.Errorf("writing %s: %w", file, err)
	case res.err != nil:
		return nil, res.n, res.err
	case err != nil:
		return nil, res.n, fmt.Errorf("writing %s: %w", file, err)
	}
	return sums, res.n, nil
}

// Put streams r into the bucket as the object file.
func (w *writer) Put(file string, r io.Reader) (int64, error) {
	if !artifact.ValidArtifactFile(file) {
		return 0, fmt.Errorf("invalid artifact file name %q", file)
	}
	n, err := w.d.upload(w.ctx, w.d.key(w.backup, file), r)
	if err != nil {
		return n, fmt.Errorf("writing %s to %s: %w", file, w.d, explain(w.d.String(), err))
	}
	w.mu.Lock()
	w.written.Record(file, n)
	w.mu.Unlock()
	return n, nil
}

func (w *writer) RecordEncoding(file string, e artifact.Encoding) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.meta.SetEncoding(file, e)
	return nil
}

var errUploadStopped = errors.New("the upload stopped")

func (w *writer) AddInstanceArtifact(group string, index int, job string, sums artifact.Checksums) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.meta.AddInstanceArtifact(group, index, job, sums)
	return nil
}

func (w *writer) AddCustomArtifact(name string, sums artifact.Checksums) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.meta.AddCustomArtifact(name, sums)
	return nil
}

func (w *writer) RecordLockWindow(locked, unlocked time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.meta.SetLockWindow(locked, unlocked)
	return nil
}

func (w *writer) SaveManifest(manifest string) error {
	if err := w.putSmall(w.ctx, artifact.ManifestFile, []byte(manifest)); err != nil {
		return err
	}
	w.mu.Lock()
	w.written.Record(artifact.ManifestFile, int64(len(manifest)))
	w.mu.Unlock()
	return nil
}

// Finish writes the metadata, the mark of a good backup, when failure is
// nil, and otherwise a FAILED object saying why (which also keeps the
// backup from ever looking good). Both are written on a context a
// cancelled run does not reach: an interrupted backup must still be
// marked failed.
func (w *writer) Finish(now time.Time, failure error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 2*time.Minute)
	defer cancel()
	w.mu.Lock()
	w.meta.SetFinishTime(now)
	err := w.meta.Check()
	var raw []byte
	if err == nil {
		raw, err = w.meta.Marshal()
	}
	expected := w.written.Expected(w.meta)
	w.mu.Unlock()
	var markErr error
	if failure == nil {
		if err == nil {
			// Nothing may have gone from under the backup before the
			// metadata marks it good.
			err = artifact.CheckWritten(ctx, expected, w.d.statObject(w.backup))
		}
		if err == nil {
			err = w.putSmall(ctx, artifact.MetadataFile, raw)
		}
		if err == nil {
			return nil
		}
		// The caller thinks the backup good: it must learn it is not.
		markErr = fmt.Errorf("the backup could not be marked good, so it is marked failed: %w", err)
		failure = err
	}
	note := "This backup failed and is incomplete: do not restore it.\n" + failure.Error() + "\n"
	return errors.Join(markErr,
		w.putSmall(ctx, artifact.FailedFile, []byte(note)),
		w.d.abortUploads(ctx, w.d.dirKey(w.backup)),
	)
}

func (w *writer) putSmall(ctx context.Context, file string, data []byte) error {
	if _, err := w.d.upload(ctx, w.d.key(w.backup, file), bytes.NewReader(data)); err != nil {
		return fmt.Errorf("writing %s to %s: %w", file, w.Location(), explain(w.d.String(), err))
	}
	return nil
}
