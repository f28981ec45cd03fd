package artifact

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// LastBackupSize is the size of the newest good backup of name in parent
// and its path; path is "" when there is none.
func LastBackupSize(parent, name string) (size int64, path string, err error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return 0, "", fmt.Errorf("listing %s: %w", parent, err)
	}
	var names []string
	for _, e := range entries {
		// Only final names: .failed and .in-progress ones do not parse.
		if deployment, _, ok := ParseBackupName(e.Name()); ok && e.IsDir() && deployment == name {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return 0, "", nil
	}
	sort.Strings(names) // the timestamps sort in time order
	path = filepath.Join(parent, names[len(names)-1])
	size, err = DirSize(path)
	return size, path, err
}

// DirSize is the sum of the sizes of the regular files under dir.
func DirSize(dir string) (int64, error) {
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += info.Size()
		}
		return err
	})
	return size, err
}

// CheckSpace refuses a backup of name into parent when the newest backup
// of name there, plus a tenth, would not fit in parent's free space.
// It is an estimate: without an earlier backup, or when the earlier one
// or the free space cannot be read, nothing is refused and the reason the
// check was skipped is returned.
func CheckSpace(parent, name string) (skipped string, err error) {
	need, last, err := LastBackupSize(parent, name)
	if err != nil {
		return fmt.Sprintf("the size of the last backup of %s could not be read (%v)", name, err), nil
	}
	if last == "" {
		return fmt.Sprintf("no earlier backup of %s in %s to estimate the size from", name, parent), nil
	}
	need += need / 10
	free, err := freeSpace(parent)
	if err != nil {
		return err.Error(), nil
	}
	if free < need {
		return "", fmt.Errorf("the backup of %s needs about %s (its last backup here, %s, plus a tenth), but %s has %s free: free space or choose another destination, or skip this check (bbr: --skip-space-check)",
			name, HumanSize(need), filepath.Base(last), parent, HumanSize(free))
	}
	return "", nil
}

// HumanSize is a size the way bbr logs it: 512B, 3.1K, 1.5G.
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%c", float64(n)/float64(div), "KMGTPE"[exp])
}
