package artifact

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// writebackChunk is how much is written before its writeback is started.
const writebackChunk = 8 << 20

// writebackWriter writes an artifact file behind itself: when a chunk is
// full it starts that chunk's writeback (sync_file_range, which does not
// wait), waits for the chunk before it to reach the disk, and drops that
// one from the page cache. Disk I/O then overlaps the transfer, the final
// fsync only waits for the last chunk, and a backup of any size keeps at
// most two chunks of the artifact in memory instead of filling the page
// cache with data nobody reads again. Filling it is what costs: on the VMs
// measured, a durable 1 GiB write took 2.9 s through the page cache and
// 0.6 s written behind (docs/performance.md).
//
// Durability still comes from the final fsync: sync_file_range writes
// data, not metadata, and does not flush the disk's cache.
type writebackWriter struct {
	f        *os.File
	written  int64 // bytes written to f
	started  int64 // writeback started for [0, started)
	waited   int64 // on disk and dropped from the cache: [0, waited)
	disabled bool  // the filesystem does not support sync_file_range
}

func newWritebackWriter(f *os.File) io.Writer { return &writebackWriter{f: f} }

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if err != nil || w.disabled || w.written-w.started < writebackChunk {
		return n, err
	}
	return n, w.writeBehind()
}

// writeBehind starts the writeback of [started, written), then waits for
// the previous chunk and drops it from the cache.
func (w *writebackWriter) writeBehind() error {
	fd := int(w.f.Fd())
	if err := unix.SyncFileRange(fd, w.started, w.written-w.started, unix.SYNC_FILE_RANGE_WRITE); err != nil {
		return w.unsupported(err)
	}
	if prev := w.started - w.waited; prev > 0 {
		const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
		// An I/O error seen here is consumed: the final fsync would not
		// report it again, so it must fail the write.
		if err := unix.SyncFileRange(fd, w.waited, prev, wait); err != nil {
			return w.unsupported(err)
		}
		_ = unix.Fadvise(fd, w.waited, prev, unix.FADV_DONTNEED) // advice only
		w.waited = w.started
	}
	w.started = w.written
	return nil
}

// unsupported turns writing behind off when the filesystem cannot do it
// (fsync then does all the work) and returns any other error.
func (w *writebackWriter) unsupported(err error) error {
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ESPIPE) || errors.Is(err, unix.EOPNOTSUPP) {
		w.disabled = true
		return nil
	}
	return fmt.Errorf("writing the artifact to disk: %w", err)
}
