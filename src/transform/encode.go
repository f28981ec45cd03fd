// Package transform stores a backup's files compressed with zstd and/or
// encrypted with age as they stream, and reads them back: decorators of
// artifact.Destination, Writer and Source, as restic wraps its backends.
// What was applied to each file is recorded in the metadata
// (artifact.Encoding), so a reader never guesses, and the output is what
// the zstd and age CLIs read.
package transform

import (
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

// window is the zstd window bbr writes with (see chain).
const window = 512 << 10

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

// chain returns a writer that compresses, then encrypts, into dst, and
// the function that flushes both (zstd's last frame, then age's last
// chunk).
func (o Options) chain(dst io.Writer) (io.Writer, func() error, error) {
	w := dst
	var closers []io.Closer // innermost first
	if len(o.Recipients) > 0 {
		rs := make([]age.Recipient, len(o.Recipients))
		for i, r := range o.Recipients {
			rs[i] = r.Recipient
		}
		aw, err := age.Encrypt(w, rs...)
		if err != nil {
			return nil, nil, fmt.Errorf("encrypting: %w", err)
		}
		w, closers = aw, append(closers, aw)
	}
	if o.Compress {
		// One goroutine and a 512 KiB window per stream, its history
		// kept at the window and a block (WithLowerEncoderMem): a backup
		// runs many streams at once, and klauspost's defaults (a
		// goroutine per CPU, an 8 MiB window) take over 10 MiB each and
		// are slower on a stream from one instance. At level 3 an
		// encoder holds 2.3 MiB (1.25 of them its match tables), against
		// 3.7 with a 1 MiB window kept twice; the window costs 2-3 % of
		// the size on source code and nothing on a SQL dump
		// (docs/performance.md).
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(o.encoderLevel()),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(window), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, nil, fmt.Errorf("compressing: %w", err)
		}
		w, closers = zw, append(closers, zw)
	}
	flush := func() error {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i].Close(); err != nil {
				return err
			}
		}
		return nil
	}
	return w, flush, nil
}

// encodeAll encodes src into dst and returns the plain bytes read. The
// writers copy what they keep (zstd its block, age its chunk), so a src
// with WriteTo (a handoff, a strings.Reader) needs no buffer here.
func (o Options) encodeAll(dst io.Writer, src io.Reader) (int64, error) {
	w, flush, err := o.chain(dst)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, src)
	if err == nil {
		err = flush()
	}
	return n, err
}

// digest counts and hashes the stored bytes as they pass.
type digest struct {
	h hash.Hash
	n int64
}

func newDigest() *digest { return &digest{h: artifact.NewStoredHash()} }

func (d *digest) Write(p []byte) (int, error) {
	d.h.Write(p)
	d.n += int64(len(p))
	return len(p), nil
}

// encoding is the metadata's record of a file encoded with o.
func (o Options) encoding(plain int64, stored *digest) artifact.Encoding {
	return artifact.Encoding{
		Transforms: o.transforms(),
		Recipients: o.recipientNames(),
		Size:       stored.n,
		CRC64NVME:  hex.EncodeToString(stored.h.Sum(nil)),
		PlainSize:  plain,
	}
}
