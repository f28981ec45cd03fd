package errand

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

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

// locksDir holds a lock file per deployment under Root: like ReportsDir,
// no deployment's folder can be called so.
const locksDir = ".locks"

// Lock takes the deployment's lock on this instance, or says that another
// backup or restore of it runs. The lock is an flock, so a killed run never
// leaves it held.
func (s Store) Lock(deployment string) (unlock func(), err error) {
	if !boshname.Valid(deployment) {
		return nil, fmt.Errorf("no lock for deployment %q: not a BOSH deployment name", deployment)
	}
	dir := filepath.Join(s.Root, locksDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, deployment), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the backup lock of %s: %w", deployment, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("not started: another backup or restore of %s is running on this instance (the scheduler's or an errand's); it goes on", deployment)
		}
		return nil, fmt.Errorf("locking the backup lock of %s: %w", deployment, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

// Local is the deployment's folder as a destination (not created).
func (s Store) Local(deployment string) artifact.Local {
	return artifact.Local{Dir: filepath.Join(s.Root, deployment)}
}

// named opens the deployment's backup called name when it is good, and
// otherwise says why it cannot be restored and which good ones exist.
func named(ctx context.Context, dest artifact.Destination, deployment, name string) (artifact.Source, error) {
	// A bucket prefix holds every deployment's backups: cf_x_<ts> is
	// cf_x's, not cf's, so the deployment must match exactly.
	owner, _, ok := artifact.ParseBackupName(artifact.BackupBase(name))
	if !ok {
		return nil, fmt.Errorf("restore.artifact %q must be a backup's name (%s_<timestamp>)", name, deployment)
	}
	if owner != deployment {
		return nil, fmt.Errorf("%s is not a backup of %s (it is one of %s)", name, deployment, owner)
	}
	src, err := dest.Open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, goodHint(ctx, dest, deployment))
	}
	return src, nil
}

// newest opens the deployment's newest good backup.
func newest(ctx context.Context, dest artifact.Destination, deployment string) (artifact.Source, error) {
	b, err := artifact.Newest(ctx, dest, deployment)
	if err != nil {
		return nil, err
	}
	return dest.Open(ctx, b.Name)
}

// goodHint lists the deployment's good backups, newest first, for an
// error message.
func goodHint(ctx context.Context, dest artifact.Destination, deployment string) string {
	all, _ := artifact.List(ctx, dest, deployment)
	var good []string
	for _, b := range all {
		if b.State == artifact.Good {
			good = append(good, b.Name)
		}
	}
	if len(good) == 0 {
		return "; it has no good backup at " + dest.String()
	}
	return "; its good backups at " + dest.String() + ", newest first: " + strings.Join(good, ", ")
}
