// Package transform stores a backup's files compressed with zstd and/or
// encrypted with age as they stream, and reads them back: decorators of
// artifact.Destination, Writer and Source, as restic wraps its backends.
// What was applied to each file is recorded in the metadata
// (artifact.Encoding), so a reader never guesses, and the output is what
// the zstd and age CLIs read.
package transform

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/bbr-release/bbr/src/artifact"
)

// Options say how new backups are stored and how stored ones are read.
type Options struct {
	// Compress stores files with zstd at Level (1 to 19; 0 is 3, zstd's
	// default).
	Compress bool
	Level    int
	// Recipients encrypt new backups' files (and manifest) with age.
	Recipients []Recipient
	// Identities decrypt stored backups.
	Identities []age.Identity
}

// DefaultLevel is zstd's own default level.
const DefaultLevel = 3

// window is the zstd window bbr writes with (see newEncoder).
const window = 1 << 20

// Validate refuses options that cannot work.
func (o Options) Validate() error {
	if o.Level != 0 && (o.Level < 1 || o.Level > 19) {
		return fmt.Errorf("the zstd level %d is not between 1 and 19", o.Level)
	}
	if o.Level != 0 && !o.Compress {
		return errors.New("a zstd level was given without compression")
	}
	return nil
}

// Writes says whether new backups are transformed at all.
func (o Options) Writes() bool { return o.Compress || len(o.Recipients) > 0 }

func (o Options) transforms() []string {
	var ts []string
	if o.Compress {
		ts = append(ts, artifact.Zstd)
	}
	if len(o.Recipients) > 0 {
		ts = append(ts, artifact.Age)
	}
	return ts
}

func (o Options) recipientNames() []string {
	var names []string
	for _, r := range o.Recipients {
		names = append(names, r.Name)
	}
	return names
}

// encoder is one file being encoded: what is written to it reaches dst
// compressed, then encrypted, and is counted and hashed on both sides.
type encoder struct {
	plain   counter
	stored  counter
	storedH hash.Hash
	closers []io.Closer // innermost transform first
	o       Options
}

func newEncoder(dst io.Writer, o Options) (*encoder, error) {
	e := &encoder{storedH: sha256.New(), o: o}
	e.stored.w = io.MultiWriter(dst, e.storedH)
	var w io.Writer = &e.stored
	if len(o.Recipients) > 0 {
		rs := make([]age.Recipient, len(o.Recipients))
		for i, r := range o.Recipients {
			rs[i] = r.Recipient
		}
		aw, err := age.Encrypt(w, rs...)
		if err != nil {
			return nil, fmt.Errorf("encrypting: %w", err)
		}
		w, e.closers = aw, append(e.closers, aw)
	}
	if o.Compress {
		level := o.Level
		if level == 0 {
			level = DefaultLevel
		}
		// One goroutine and a 1 MiB window per stream: a backup runs
		// many streams at once, and klauspost's defaults (a goroutine per
		// CPU, an 8 MiB window) take over 10 MiB each, and are slower on
		// a stream from one instance.
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(window))
		if err != nil {
			return nil, fmt.Errorf("compressing: %w", err)
		}
		w, e.closers = zw, append(e.closers, zw)
	}
	e.plain.w = w
	return e, nil
}

func (e *encoder) Write(p []byte) (int, error) { return e.plain.Write(p) }

// Close flushes the transforms, outermost first (zstd's last frame, then
// age's last chunk).
func (e *encoder) Close() error {
	for i := len(e.closers) - 1; i >= 0; i-- {
		if err := e.closers[i].Close(); err != nil {
			return err
		}
	}
	return nil
}

// encoding is the metadata's record of what was written, once closed.
func (e *encoder) encoding() artifact.Encoding {
	return artifact.Encoding{
		Transforms: e.o.transforms(),
		Recipients: e.o.recipientNames(),
		Size:       e.stored.n,
		SHA256:     hex.EncodeToString(e.storedH.Sum(nil)),
		PlainSize:  e.plain.n,
	}
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
