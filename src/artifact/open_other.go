//go:build !unix

package artifact

import "os"

// openRegular opens path for reading only if it is a regular file (see
// the unix version; here a symbolic link is refused by Lstat first).
func openRegular(path string) (*os.File, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, notRegular(path, info.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return checkRegular(f)
}
