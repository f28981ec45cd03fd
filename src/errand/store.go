package errand

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/boshname"
)

// Store is the errand's artifact directory: one folder per deployment,
// holding that deployment's backups as bbr names them
// (<deployment>_<timestamp>, or with .failed / .in-progress when they are
// not good).
type Store struct{ Root string }

// Dir is the deployment's folder (created 0700 when missing). The name
// must be a BOSH deployment name: "..", "a/b" or "" would name a folder
// elsewhere than one of Root's own.
func (s Store) Dir(deployment string) (string, error) {
	if !boshname.Valid(deployment) {
		return "", fmt.Errorf("no folder for deployment %q under %s: not a BOSH deployment name", deployment, s.Root)
	}
	dir := filepath.Join(s.Root, deployment)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the artifact folder of %s: %w", deployment, err)
	}
	return dir, nil
}

var backupName = regexp.MustCompile(`_(\d{8}T\d{6}Z)(\.failed|\.in-progress)?$`)

type stored struct {
	path, stamp string
	good        bool
	// failed: named .failed or .in-progress, or holding a FAILED marker.
	failed bool
	// unreadable: why a backup under its final name, without a marker,
	// cannot be opened (an I/O error, a permission, an artifact this
	// version does not read): it may be good, so retention keeps it.
	unreadable error
}

// list returns the deployment's backups, newest first. A backup is good
// only under its final name and when bbr can open it (metadata valid, no
// FAILED marker).
func (s Store) list(deployment string) ([]stored, error) {
	dir := filepath.Join(s.Root, deployment)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the backups of %s: %w", deployment, err)
	}
	var out []stored
	for _, e := range entries {
		m := backupName.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil || !strings.HasPrefix(e.Name(), deployment+"_") {
			continue
		}
		b := stored{path: filepath.Join(dir, e.Name()), stamp: m[1], failed: m[2] != ""}
		if !b.failed {
			_, err := artifact.Open(b.path)
			_, markerErr := os.Lstat(filepath.Join(b.path, artifact.FailedFile))
			b.good = err == nil
			b.failed = err != nil && markerErr == nil
			if err != nil && !b.failed {
				b.unreadable = err
			}
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].stamp > out[j].stamp })
	return out, nil
}

// Newest returns the newest good backup of the deployment.
func (s Store) Newest(deployment string) (string, error) {
	all, err := s.list(deployment)
	if err != nil {
		return "", err
	}
	for _, b := range all {
		if b.good {
			return b.path, nil
		}
	}
	return "", fmt.Errorf("no good backup of %s under %s", deployment, filepath.Join(s.Root, deployment))
}

// Pruned is what Prune did: the backups it removed, and the ones under a
// final name it could not read and so kept.
type Pruned struct {
	Removed []string
	Kept    []error
}

// Prune keeps the newest keep good backups of the deployment (all when
// keep is 0) and removes the older ones, and every failed or unfinished
// backup older than the newest good one. Failed backups never count
// toward keep. A backup under its final name that cannot be read is never
// removed: it may be good (see stored.unreadable).
func (s Store) Prune(deployment string, keep int) (Pruned, error) {
	var p Pruned
	all, err := s.list(deployment)
	if err != nil {
		return p, err
	}
	var errs []error
	goodSeen := 0
	for _, b := range all {
		drop := false
		switch {
		case b.good:
			goodSeen++
			drop = keep > 0 && goodSeen > keep
		case b.failed:
			drop = goodSeen > 0 // a newer good backup exists
		default:
			p.Kept = append(p.Kept, fmt.Errorf("kept %s: it cannot be read (%w); remove it by hand if it is not a good backup", b.path, b.unreadable))
		}
		if !drop {
			continue
		}
		if err := os.RemoveAll(b.path); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", b.path, err))
			continue
		}
		p.Removed = append(p.Removed, b.path)
	}
	return p, errors.Join(errs...)
}

// Named returns the deployment's backup called name when it is good, and
// otherwise says why it cannot be restored and which good ones exist.
func (s Store) Named(deployment, name string) (string, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return "", fmt.Errorf("restore.artifact %q must be a backup's directory name", name)
	}
	path := filepath.Join(s.Root, deployment, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("no backup %s of %s under %s%s", name, deployment, filepath.Join(s.Root, deployment), s.goodHint(deployment))
	}
	if !strings.HasPrefix(name, deployment+"_") {
		return "", fmt.Errorf("%s is not a backup of %s (its name must start with %s_)", path, deployment, deployment)
	}
	if _, err := artifact.Open(path); err != nil {
		return "", fmt.Errorf("%w%s", err, s.goodHint(deployment))
	}
	return path, nil
}

// goodHint lists the deployment's good backups, newest first, for an
// error message.
func (s Store) goodHint(deployment string) string {
	all, _ := s.list(deployment)
	var good []string
	for _, b := range all {
		if b.good {
			good = append(good, filepath.Base(b.path))
		}
	}
	if len(good) == 0 {
		return "; it has no good backup"
	}
	return "; its good backups, newest first: " + strings.Join(good, ", ")
}
