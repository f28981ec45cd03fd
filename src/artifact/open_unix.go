//go:build unix

package artifact

import (
	"errors"
	"os"
	"syscall"
)

// openRegular opens path for reading only if it is a regular file: no
// symbolic link is followed (O_NOFOLLOW), and a FIFO or a device cannot
// block the open (O_NONBLOCK, which regular files ignore); the type is
// then checked on the open file itself, so nothing can swap it in
// between.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, notRegular(path, os.ModeSymlink)
	}
	if err != nil {
		return nil, err
	}
	return checkRegular(f)
}
