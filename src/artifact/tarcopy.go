package artifact

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// NotCheckedError is a stream that is not what the metadata says, or not
// safe to extract.
type NotCheckedError struct{ msg string }

func (e *NotCheckedError) Error() string { return e.msg }

func notChecked(format string, args ...any) error {
	return &NotCheckedError{msg: fmt.Sprintf(format, args...)}
}

// CopyVerified copies the tar stream src to dst only as far as it has
// checked it: each header reaches dst once it passed SumTar's safety rules
// and names a file want lists, and each file's data as it is hashed. It
// fails, and stops copying, at the first file whose checksum differs from
// want (that file's data has then passed: the receiver must discard what
// it extracted) and when the stream ends without a file want lists.
// Nothing after the end-of-archive marker is passed on. Restore feeds the
// instance this way, so no entry that was not checked is ever extracted
// as root, and no restore script sees a file that differs.
func CopyVerified(dst io.Writer, src io.Reader, want Checksums) error {
	s := newTarScanner(src, dst)
	rec, tr := s.rec, s.tr
	sums := Checksums{}
	buf := make([]byte, ioBufferSize)
	for {
		hdr, err := s.next(sums)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		key := fileKey(hdr.Name)
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeLink {
			if _, ok := want[key]; !ok {
				return notChecked("%s is not in the backup's metadata", key)
			}
		}
		if err := rec.flush(); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			sum, err := hashEntry(tr, rec, buf)
			if err != nil {
				return fmt.Errorf("reading %s from tar stream: %w", hdr.Name, err)
			}
			if sum != want[key] {
				return notChecked("%s differs from the backup's metadata", key)
			}
			sums[key] = sum
		case tar.TypeLink:
			sums[key] = sums[fileKey(hdr.Linkname)]
			if sums[key] != want[key] {
				return notChecked("%s differs from the backup's metadata", key)
			}
		}
	}
	if diff := Compare(want, sums); diff != nil {
		return notChecked("it lacks files the backup's metadata lists: %v", diff)
	}
	if err := rec.flush(); err != nil { // the end-of-archive blocks
		return err
	}
	if _, err := io.Copy(io.Discard, src); err != nil { // padding, kept local
		return fmt.Errorf("reading end of tar stream: %w", err)
	}
	return nil
}

// hashEntry hashes the current entry's data, passing it on as it goes.
// The tar reader reads file data straight from the stream into buf (the
// padding after it is read by the next Next), so buf itself is passed on
// and the recorder is not needed for it.
func hashEntry(tr *tar.Reader, rec *recorder, buf []byte) (string, error) {
	h := sha256.New()
	rec.direct = true
	defer func() { rec.direct = false }()
	for {
		n, err := tr.Read(buf)
		h.Write(buf[:n])
		if _, werr := rec.w.Write(buf[:n]); werr != nil {
			return "", fmt.Errorf("sending: %w", werr)
		}
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// recorder keeps what was read from r until flush writes it to w, except
// while direct (the caller passes the bytes on itself).
type recorder struct {
	r      io.Reader
	w      io.Writer
	buf    bytes.Buffer
	direct bool
}

func (c *recorder) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if !c.direct {
		c.buf.Write(p[:n])
	}
	return n, err
}

func (c *recorder) flush() error {
	if c.buf.Len() == 0 {
		return nil
	}
	_, err := c.w.Write(c.buf.Bytes())
	c.buf.Reset()
	if err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	return nil
}
