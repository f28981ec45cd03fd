// Package labdir is the lab directory (--dir): the names of its files, and
// claiming, emptying and removing it. Only a directory that `bbr-lab up`
// marked as the lab's is ever emptied, so a mistyped --dir never loses
// anyone's files.
package labdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Files of the lab directory besides lab.json (model), ca.pem/ca.key (pki)
// and instances/ (instance package).
const (
	// Marker says the directory was made by `bbr-lab up`, which is what
	// allows `bbr-lab down` to empty it.
	Marker      = ".bbr-lab"
	EnvFile     = "director.env"
	DirectorPid = "director.pid"
	DirectorLog = "director.log"
	Deployments = "deployments"
	// DirectorState holds what the Director is given: uploaded releases,
	// compiled packages, the deployments it lays out.
	DirectorState = "director"
	// varVcapMarker records that up created the host's /var/vcap mount
	// point, so that down removes it again.
	varVcapMarker = "created-var-vcap"
)

// Path cleans --dir and rejects paths that sshd's config or the
// instances' mount table could not carry.
func Path(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving --dir %s: %w", dir, err)
	}
	if strings.ContainsAny(abs, " \t\n\"'\\%") {
		return "", fmt.Errorf("--dir %q: the lab directory path must not contain spaces, quotes, backslashes or %%", abs)
	}
	if abs == "/" {
		return "", errors.New("--dir /: the lab needs a directory of its own")
	}
	return abs, nil
}

// Claim makes dir the lab's: it must be new, empty, or a lab directory
// that `bbr-lab down` has emptied.
func Claim(dir string) error {
	if err := checkClaimable(dir); err != nil {
		return err
	}
	// 0711: SSH users must traverse it to reach their authorized_keys file
	// (sshd reads it with their uid) but must not list it.
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("creating lab directory: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("setting mode of lab directory: %w", err)
	}
	if err := checkTraversable(dir); err != nil {
		return err
	}
	note := "Made by bbr-lab up; bbr-lab down removes everything in this directory.\n"
	if err := os.WriteFile(filepath.Join(dir, Marker), []byte(note), 0o600); err != nil {
		return fmt.Errorf("marking lab directory: %w", err)
	}
	return nil
}

// checkClaimable refuses a directory holding anything but the marker:
// someone else's files, or a lab that is still up.
func checkClaimable(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("reading lab directory: %w", err)
	}
	for _, e := range entries {
		if e.Name() == Marker {
			continue
		}
		if !IsLab(dir) {
			return fmt.Errorf("%s is not empty and is not a lab directory; choose another --dir", dir)
		}
		return fmt.Errorf("a lab is already up (or was not cleaned up) in %s: run `bbr-lab down --dir %s` first", dir, dir)
	}
	return nil
}

// checkTraversable refuses a lab directory that SSH users cannot reach:
// sshd reads authorized_keys with the user's uid, so every parent must
// let others through, or every login fails with "unable to authenticate".
func checkTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("checking %s: %w", p, err)
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("SSH users could not reach %s: its parent %s (mode %04o) does not let others through, and sshd reads authorized_keys as the user; choose a --dir under a world-traversable directory or run chmod o+x %s", abs, p, info.Mode().Perm(), p)
		}
		if p == "/" {
			return nil
		}
	}
}

// EnsureVarVcap creates the host's /var/vcap, where each instance mounts
// its root, remembering that we made it.
func EnsureVarVcap(dir string) error {
	if _, err := os.Stat("/var/vcap"); err == nil {
		return nil
	}
	if err := os.MkdirAll("/var/vcap", 0o755); err != nil {
		return fmt.Errorf("creating /var/vcap: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, varVcapMarker), nil, 0o600)
}

// IsLab says whether `bbr-lab up` marked dir as a lab directory.
func IsLab(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, Marker))
	return err == nil
}
