package transform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/bbr-release/bbr/src/artifact"
)

// maxWindow bounds the memory a zstd frame can make a reader take: bbr
// writes 512 KiB windows (1 MiB before), the zstd CLI 8 MiB at most below level 20; a
// hostile file claiming gigabytes is refused instead of allocated.
const maxWindow = 64 << 20

// Decode wraps a stored backup so that Open gives each file the metadata
// records an encoding for as its plain content, decrypting with ids.
// Stored names (db-0-pg.tar.zst.age) still open as they are, so a copy
// can move the stored bytes unchanged.
func Decode(src artifact.Source, ids []age.Identity) artifact.Source {
	if len(src.Metadata().Encodings) == 0 {
		return src
	}
	return &source{Source: src, ids: ids}
}

type source struct {
	artifact.Source
	ids []age.Identity
}

// Size is a file's plain size, as Open streams it.
func (s *source) Size(file string) int64 {
	if e, ok := s.Metadata().Encodings[file]; ok {
		return e.PlainSize
	}
	return s.Source.Size(file)
}

// Open streams file's plain content.
func (s *source) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	e, ok := s.Metadata().Encodings[file]
	if !ok {
		return s.Source.Open(ctx, file)
	}
	stored := e.StoredName(file)
	if e.Encrypted() && len(s.ids) == 0 {
		return nil, fmt.Errorf("%s is encrypted (to %s): give an identity that decrypts it (--identity-file)", stored, strings.Join(e.Recipients, ", "))
	}
	raw, err := s.Source.Open(ctx, stored)
	if err != nil {
		return nil, err
	}
	r, closeDecoder, err := decoder(raw, stored, e, s.ids)
	if err != nil {
		raw.Close()
		return nil, err
	}
	sized := &sizedReader{r: r, left: e.PlainSize, name: stored}
	return readCloser{sized, func() error { closeDecoder(); return raw.Close() }}, nil
}

// sizedReader fails a decoded file that is longer or shorter than the
// metadata's plain size: a decompression bomb stops at the size recorded.
type sizedReader struct {
	r    io.Reader
	left int64
	name string
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if s.left < 0 {
		return 0, fmt.Errorf("%s decodes to more than its metadata records", s.name)
	}
	// One byte more finds a longer file; left+1 is never computed, as
	// left may be any size the metadata holds.
	if int64(len(p))-1 > s.left {
		p = p[:s.left+1]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	switch {
	case s.left < 0:
		return n, fmt.Errorf("%s decodes to more than the %d bytes its metadata records", s.name, s.left+int64(n))
	case errors.Is(err, io.EOF) && s.left > 0:
		return n, fmt.Errorf("%s decodes to %d bytes fewer than its metadata records", s.name, s.left)
	}
	return n, err
}

// decoder undoes e's transforms on r, in reverse order.
func decoder(r io.Reader, stored string, e artifact.Encoding, ids []age.Identity) (io.Reader, func(), error) {
	closeAll := func() {}
	for i := len(e.Transforms) - 1; i >= 0; i-- {
		switch e.Transforms[i] {
		case artifact.Age:
			dr, err := age.Decrypt(r, ids...)
			if err != nil {
				closeAll()
				return nil, nil, decryptError(stored, e, err)
			}
			r = stage{dr, stored + ": decrypting"}
		case artifact.Zstd:
			zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxWindow))
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("%s: decompressing: %w", stored, err)
			}
			prev := closeAll
			closeAll = func() { zr.Close(); prev() }
			r = stage{zr, stored + ": decompressing (is it zstd, as the metadata says?)"}
		}
	}
	return r, closeAll, nil
}

func decryptError(stored string, e artifact.Encoding, err error) error {
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return fmt.Errorf("%s: none of the identities given decrypts it: it was encrypted to %s", stored, strings.Join(e.Recipients, ", "))
	}
	return fmt.Errorf("%s: not a readable age file (is it encrypted, as the metadata says?): %w", stored, err)
}

// stage names the file and the step in a read's error.
type stage struct {
	r    io.Reader
	what string
}

func (s stage) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	var named stageError
	if err != nil && !errors.Is(err, io.EOF) && !errors.As(err, &named) {
		err = stageError{fmt.Errorf("%s: %w", s.what, err)}
	}
	return n, err
}

// stageError is a read error a stage named already (an inner stage's,
// passing through an outer one).
type stageError struct{ error }

func (e stageError) Unwrap() error { return e.error }

type readCloser struct {
	io.Reader
	close func() error
}

func (rc readCloser) Close() error { return rc.close() }

// ErrNeedsIdentity is an encrypted backup read without an identity.
var ErrNeedsIdentity = errors.New("the backup is encrypted")

// CheckIdentities refuses an encrypted backup src (as Decode gave it)
// cannot decrypt: no identity given, or none that opens the first
// encrypted file's header. It reads only that header, so a restore
// learns it before anything else.
func CheckIdentities(ctx context.Context, src artifact.Source) error {
	meta := src.Metadata()
	files := slices.Sorted(maps.Keys(meta.Encodings))
	i := slices.IndexFunc(files, func(f string) bool { return meta.Encodings[f].Encrypted() })
	if i < 0 {
		return nil
	}
	dec, ok := src.(*source)
	if !ok || len(dec.ids) == 0 {
		return fmt.Errorf("%w (to %s): give --identity-file with an identity that decrypts it", ErrNeedsIdentity, strings.Join(meta.Recipients(), ", "))
	}
	r, err := dec.Open(ctx, files[i])
	if err != nil {
		return err
	}
	return r.Close()
}
