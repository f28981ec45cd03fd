package artifact

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackChunk is how much is written before its writeback is started.
const writebackChunk = 8 << 20

// writebackWriter starts the kernel's writeback of each chunk as soon as it
// is written (sync_file_range, which does not wait), so that disk I/O
// overlaps the transfer and the final fsync only waits for the tail.
// Durability still comes from that fsync.
type writebackWriter struct {
	f       *os.File
	written int64
	started int64
}

func newWritebackWriter(f *os.File) *writebackWriter { return &writebackWriter{f: f} }

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.started >= writebackChunk {
		// Best effort: on filesystems without it, fsync does all the work.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.started, w.written-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.written
	}
	return n, err
}
