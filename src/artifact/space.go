package artifact

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// LastBackupSize is the size of the newest good backup of name in parent
// and its path; path is "" when there is none.
func LastBackupSize(parent, name string) (size int64, path string, err error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return 0, "", fmt.Errorf("listing %s: %w", parent, err)
	}
	good := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `_\d{8}T\d{6}Z$`)
	var names []string
	for _, e := range entries {
		if e.IsDir() && good.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return 0, "", nil
	}
	sort.Strings(names) // the timestamps sort in time order
	path = filepath.Join(parent, names[len(names)-1])
	err = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += info.Size()
		}
		return err
	})
	return size, path, err
}

// CheckSpace refuses a backup of name into parent when the newest backup
// of name there, plus a tenth, would not fit in parent's free space.
// Without an earlier backup there is no estimate and nothing is refused
// (estimated is false).
func CheckSpace(parent, name string) (estimated bool, err error) {
	need, last, err := LastBackupSize(parent, name)
	if err != nil || last == "" {
		return false, err
	}
	need += need / 10
	free, err := freeSpace(parent)
	if err != nil {
		return true, err
	}
	if free < need {
		return true, fmt.Errorf("the backup of %s needs about %s (its last backup here, %s, plus a tenth), but %s has %s free: free space, choose another --artifact-path, or pass --skip-space-check",
			name, HumanSize(need), filepath.Base(last), parent, HumanSize(free))
	}
	return true, nil
}
