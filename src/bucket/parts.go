package bucket

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"
)

// parts is the run's part buffers: Concurrency of them, PartSize each,
// shared by every upload. An upload reads its next part only once a
// buffer is free, so memory stays at PartSize × Concurrency however many
// drains run at once, and a part is read while the others upload.
type parts struct {
	size int64
	free chan []byte
}

func newParts(size int64, n int) *parts {
	p := &parts{size: size, free: make(chan []byte, n)}
	for range n {
		p.free <- nil // allocated on first use
	}
	return p
}

func (p *parts) get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.free:
		if b == nil {
			b = make([]byte, p.size)
		}
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *parts) put(b []byte) { p.free <- b }

// drop gives up a buffer a failed request may still be reading: the
// HTTP transport can go on sending a body after the answer (an early
// refusal) has come back. Its slot gets a new buffer on next use.
func (p *parts) drop() { p.free <- nil }

// endOfStream says whether io.ReadFull's err is the stream's end. Only
// the bare values are: ReadFull returns a reader's own error as it is,
// and a stream that failed with a wrapped "unexpected EOF" (a cut SSH
// stream's tar) must abort the upload, not complete a truncated object.
func endOfStream(err error) bool {
	return err == io.EOF || err == io.ErrUnexpectedEOF //nolint:errorlint // identity, on purpose
}

// upload stores r as key: one PUT when it fits in a part, else a
// multipart upload that is completed only when every part is confirmed,
// and aborted when anything fails, so that a failed upload leaves no
// object and no parts billed.
func (d *Destination) upload(ctx context.Context, key string, r io.Reader) (int64, error) {
	buf, err := d.parts.get(ctx)
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(r, buf)
	if endOfStream(err) {
		_, err := d.core.PutObject(ctx, d.cfg.Bucket, key, bytes.NewReader(buf[:n]), int64(n), "", "", d.putOptions())
		if err != nil {
			d.parts.drop()
			return int64(n), err
		}
		d.parts.put(buf)
		return int64(n), nil
	}
	if err != nil {
		d.parts.put(buf)
		return 0, err
	}
	id, err := d.core.NewMultipartUpload(ctx, d.cfg.Bucket, key, d.multipartOptions())
	if err != nil {
		d.parts.put(buf)
		return 0, err
	}
	total, err := d.uploadParts(ctx, key, id, r, buf)
	if err != nil {
		return total, errors.Join(err, d.abort(ctx, key, id))
	}
	return total, nil
}

// uploadParts sends buf (the first part, full) and the rest of r, each
// part as soon as it is read, while the next is read into a free buffer.
func (d *Destination) uploadParts(ctx context.Context, key, id string, r io.Reader, buf []byte) (int64, error) {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g, gctx := errgroup.WithContext(pctx)
	var mu sync.Mutex
	var done []minio.CompletePart
	total := int64(0)
	send := func(number int, part []byte) {
		total += int64(len(part))
		g.Go(func() error {
			sum := partChecksum(part)
			p, err := d.core.PutObjectPart(gctx, d.cfg.Bucket, key, id, number, bytes.NewReader(part), int64(len(part)),
				minio.PutObjectPartOptions{DisableContentSha256: true, CustomHeader: http.Header{checksumHeader: {sum}}})
			if err != nil {
				d.parts.drop()
				return fmt.Errorf("uploading part %d: %w", number, err)
			}
			d.parts.put(part[:cap(part)])
			mu.Lock()
			done = append(done, minio.CompletePart{PartNumber: number, ETag: p.ETag, ChecksumCRC32C: sum})
			mu.Unlock()
			return nil
		})
	}
	readErr := func() error {
		for number := 1; ; number++ {
			if number > MaxParts {
				d.parts.put(buf[:cap(buf)])
				return fmt.Errorf("the tar is larger than %d parts of %d MiB: raise the part size (--s3-part-size-mib, or the errand's s3.part_size_mib)", MaxParts, d.cfg.PartSize>>20)
			}
			send(number, buf)
			if len(buf) < cap(buf) {
				return nil // that was the short last part
			}
			if err := gctx.Err(); err != nil {
				return err // a part failed: read no further
			}
			var err error
			if buf, err = d.parts.get(gctx); err != nil {
				return err
			}
			n, err := io.ReadFull(r, buf)
			switch {
			case err == io.EOF: //nolint:errorlint // see endOfStream
				d.parts.put(buf)
				return nil
			case endOfStream(err):
				buf = buf[:n]
			case err != nil:
				d.parts.put(buf)
				return err
			}
		}
	}()
	if readErr != nil && gctx.Err() == nil {
		// The stream failed on its own: the parts in flight are lost.
		cancel(readErr)
		_ = g.Wait()
		return total, readErr
	}
	if err := g.Wait(); err != nil {
		return total, err // readErr is then only the cancellation it caused
	}
	if readErr != nil {
		return total, readErr
	}
	sort.Slice(done, func(i, j int) bool { return done[i].PartNumber < done[j].PartNumber })
	_, err := d.core.CompleteMultipartUpload(ctx, d.cfg.Bucket, key, id, done, minio.PutObjectOptions{})
	return total, err
}

// abort drops an unfinished upload's parts, also when the run was
// cancelled (that is when it matters most).
func (d *Destination) abort(ctx context.Context, key, id string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := d.core.AbortMultipartUpload(actx, d.cfg.Bucket, key, id); err != nil {
		return fmt.Errorf("aborting the multipart upload of %s (the next backup's retention, or the bucket's lifecycle rule, removes it): %w", key, err)
	}
	return nil
}

func (d *Destination) putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{ServerSideEncryption: d.sse, ContentType: "application/octet-stream"}
}

// Parts are sent as the AWS SDKs send them: an unsigned payload with a
// CRC32C the server checks (declared when the upload starts), instead
// of a SHA-256 signature of every 64 KiB chunk, which costs a SHA-256
// pass over the data on each side. Tampering in transit is still caught:
// over HTTPS by TLS, and in any case by the per-file sha256 in the
// metadata (uploaded with a signed payload), checked before anything is
// restored.
const checksumHeader = "X-Amz-Checksum-Crc32c"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func partChecksum(part []byte) string {
	sum := crc32.Checksum(part, castagnoli)
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))
}

func (d *Destination) multipartOptions() minio.PutObjectOptions {
	o := d.putOptions()
	o.UserMetadata = map[string]string{"X-Amz-Checksum-Algorithm": "CRC32C"}
	return o
}
