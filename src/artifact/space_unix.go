//go:build unix

package artifact

import (
	"fmt"
	"syscall"
)

// freeSpace is what an unprivileged writer may still use in dir's file
// system.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("reading the free space of %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
