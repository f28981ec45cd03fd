//go:build !linux

package artifact

import (
	"io"
	"os"
)

// newWritebackWriter is the plain file elsewhere: the final fsync does the
// work (sync_file_range is Linux-only).
func newWritebackWriter(f *os.File) io.Writer { return f }
