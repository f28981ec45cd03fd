package transform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
)

// Destination stores new backups transformed by its options and opens
// stored ones decoding them with its identities. Listing and deleting
// are the wrapped destination's.
type Destination struct {
	artifact.Destination
	Options Options
}

// Wrap decorates d; with no transform to apply it is d itself, and new
// backups stay upstream's plain format.
func Wrap(d artifact.Destination, o Options) artifact.Destination {
	if !o.Writes() {
		return d
	}
	return &Destination{Destination: d, Options: o}
}

// Create starts a backup whose files are transformed as they stream.
func (d *Destination) Create(ctx context.Context, backup string, start time.Time) (artifact.Writer, error) {
	w, err := d.Destination.Create(ctx, backup, start)
	if err != nil || !d.Options.Writes() {
		return w, err
	}
	return &writer{Writer: w, o: d.Options, encs: map[string]artifact.Encoding{}}, nil
}

// Open opens a good backup that decodes its files as they are read.
func (d *Destination) Open(ctx context.Context, name string) (artifact.Source, error) {
	src, err := d.Destination.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return Decode(src, d.Options.Identities), nil
}

// CheckSpace is the wrapped destination's free-space check, if it has one.
func (d *Destination) CheckSpace(deployment string) (string, error) {
	if sc, ok := d.Destination.(interface {
		CheckSpace(string) (string, error)
	}); ok {
		return sc.CheckSpace(deployment)
	}
	return "", nil
}

// writer encodes each tar as it streams into the wrapped writer's Put,
// and records the encoding with the file's checksums, so the metadata
// has it only for files the backup kept.
type writer struct {
	artifact.Writer
	o Options

	mu   sync.Mutex
	encs map[string]artifact.Encoding
}

// WriteTar hashes the plain tar as upstream does, and stores it encoded.
// Three goroutines share the work: hashing the plain tar (the caller's),
// compressing and encrypting, and storing with the stored bytes' digest;
// in one, a backup from one instance would be held to one core. The
// stages hand each other their own slices (handoff): no buffer between
// them, as a backup runs many of these at once. The memory limit grows
// by what the stream holds while it runs (memory.go).
func (w *writer) WriteTar(file string, r io.Reader) (artifact.Checksums, int64, error) {
	defer reserve(w.o.streamMemory())()
	enc := newHandoff()
	putDone := make(chan error, 1)
	go func() {
		_, err := w.Writer.Put(w.o.storedName(file), enc)
		enc.CloseWithError(errors.Join(err, errStopped)) // unblocks the encoder
		putDone <- err
	}()
	plainR := newHandoff()
	stored := newDigest()
	var plain int64
	encDone := make(chan error, 1)
	go func() {
		n, err := w.o.encodeAll(io.MultiWriter(stored, enc), plainR)
		plain = n
		plainR.CloseWithError(errors.Join(err, errStopped)) // unblocks the hashing
		enc.CloseWrite(err)                                 // the stored file ends here, or fails
		encDone <- err
	}()
	sums, err := artifact.SumTar(io.TeeReader(r, plainR))
	plainR.CloseWrite(err)
	encErr, putErr := <-encDone, <-putDone
	// The first stage to fail is the cause; the others fail with it.
	switch {
	case err != nil && !errors.Is(err, errStopped):
		return nil, 0, fmt.Errorf("writing %s: %w", file, err)
	case encErr != nil && !errors.Is(encErr, errStopped):
		return nil, 0, fmt.Errorf("encoding %s: %w", file, encErr)
	case putErr != nil:
		return nil, 0, putErr
	case err != nil || encErr != nil:
		return nil, 0, fmt.Errorf("writing %s: %w", file, errors.Join(err, encErr))
	}
	e := w.o.encoding(plain, stored)
	w.mu.Lock()
	w.encs[file] = e
	w.mu.Unlock()
	return sums, e.Size, nil
}

var errStopped = errors.New("storing stopped")

func (o Options) storedName(file string) string {
	return artifact.Encoding{Transforms: o.transforms()}.StoredName(file)
}

func (w *writer) AddInstanceArtifact(group string, index int, job string, sums artifact.Checksums) error {
	if err := w.record(artifact.InstanceFileName(group, strconv.Itoa(index), job)); err != nil {
		return err
	}
	return w.Writer.AddInstanceArtifact(group, index, job, sums)
}

func (w *writer) AddCustomArtifact(name string, sums artifact.Checksums) error {
	if err := w.record(artifact.CustomFileName(name)); err != nil {
		return err
	}
	return w.Writer.AddCustomArtifact(name, sums)
}

// record passes on the encoding WriteTar made of file; a file stored
// otherwise (Put, by a copy) has its encoding recorded by its writer.
func (w *writer) record(file string) error {
	w.mu.Lock()
	e, ok := w.encs[file]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	return w.Writer.RecordEncoding(file, e)
}

// SaveManifest stores the manifest encoded like the tars: encrypted
// whenever encryption is on, as it holds the deployment's credentials.
func (w *writer) SaveManifest(manifest string) error {
	var buf bytes.Buffer
	stored := newDigest()
	plain, err := w.o.encodeAll(io.MultiWriter(&buf, stored), strings.NewReader(manifest))
	if err != nil {
		return fmt.Errorf("encoding %s: %w", artifact.ManifestFile, err)
	}
	if _, err := w.Writer.Put(w.o.storedName(artifact.ManifestFile), &buf); err != nil {
		return err
	}
	return w.Writer.RecordEncoding(artifact.ManifestFile, w.o.encoding(plain, stored))
}
