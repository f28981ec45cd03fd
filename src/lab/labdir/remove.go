package labdir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// RemoveContents empties the lab directory and removes it, with the
// host's /var/vcap if up created it and it is empty. It only touches a
// directory that up marked as the lab's (up marks it before anything
// else), so a mistyped --dir never loses anyone's files.
func RemoveContents(dir string) error {
	if !IsLab(dir) {
		return nil
	}
	_, vcapErr := os.Stat(filepath.Join(dir, varVcapMarker))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading lab directory: %w", err)
	}
	var errs []error
	for _, e := range entries {
		// The marker goes last: a failed removal must stay retryable.
		if e.Name() == Marker {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", e.Name(), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if vcapErr == nil {
		_ = os.Remove("/var/vcap") // only if empty: never take anyone's files
	}
	if err := os.Remove(filepath.Join(dir, Marker)); err != nil {
		return fmt.Errorf("removing %s: %w", Marker, err)
	}
	_ = os.Remove(dir) // only if empty
	return nil
}

// UnmountUnder detaches any mount below dir in our namespace. The lab only
// mounts inside instance namespaces, so this finds nothing unless someone
// mounted by hand; removing the directory through a mount would delete
// what it shows.
func UnmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("reading mount table: %w", err)
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			targets = append(targets, fields[4])
		}
	}
	var errs []error
	// Deepest first.
	for i := len(targets) - 1; i >= 0; i-- {
		if err := syscall.Unmount(targets[i], syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", targets[i], err))
		}
	}
	return errors.Join(errs...)
}
