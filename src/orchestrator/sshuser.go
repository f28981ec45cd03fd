package orchestrator

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// The life of the SSH user a DirectorFinder sets up for one run: made by
// a Director task per instance group, removed by one per instance.

// ErrCleanupUnconfirmed wraps a cleanup task that had not finished when
// CleanUpSSH stopped waiting: the user is probably removed soon after.
var ErrCleanupUnconfirmed = errors.New("the Director has not finished removing the SSH user yet")

// ErrSetUpUnfinished wraps an SSH set-up abandoned before the Director's
// task ended: it may still make the user after bbr cleaned up.
var ErrSetUpUnfinished = errors.New("the Director's SSH set-up task had not finished")

// newSSHIdentity makes the ephemeral user name (bosh_ + 15 hex, as bosh-cli
// does, short enough for Windows) and a key pair used for this run only.
func newSSHIdentity() (string, ssh.Signer, error) {
	buf := make([]byte, 8)
	if _, err := rand.Read(buf); err != nil {
		return "", nil, fmt.Errorf("generating ssh user name: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("generating ssh key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return "", nil, fmt.Errorf("generating ssh key: %w", err)
	}
	return "bosh_" + hex.EncodeToString(buf)[:15], signer, nil
}

// abandonSetUp undoes a failed set-up and returns setUpErr with what that
// left. A failed or abandoned set-up may still have made the user on any
// group it was asked for (the Director's tasks run on): the user is
// removed by name from every one of them.
func (f DirectorFinder) abandonSetUp(run Run, d *Deployment, groups []string, setUpErr error) error {
	cleanupErr := f.cleanUpGroups(run, d, groups)
	if errors.Is(setUpErr, ErrSetUpUnfinished) {
		// The task may make the user after that cleanup.
		for _, g := range groups {
			cleanupErr = errors.Join(cleanupErr, cleanupError(userLeft(d.Name, d.sshUser, g, ErrSetUpUnfinished)))
		}
	}
	run.Leftovers.forget(d)
	return errors.Join(setUpErr, cleanupErr)
}

// cleanUpGroups removes the run's SSH user from every instance of the
// groups, on a fresh context.
func (f DirectorFinder) cleanUpGroups(run Run, d *Deployment, groups []string) error {
	ctx, cancel := run.freshContext()
	defer cancel()
	return cleanupError(forEach(groups, run.Parallelism, func(group string) error {
		return f.cleanUpSSH(ctx, run, d, group, "")
	}))
}

// cleanUpSSH asks the Director to remove the run's SSH user from one
// instance (every instance of the group when id is ""). A cleanup the
// Director has not finished when bbr stops waiting is a warning, not a
// failure: it is queued and runs later.
func (f DirectorFinder) cleanUpSSH(ctx context.Context, run Run, d *Deployment, group, id string) error {
	err := f.Director.CleanUpSSH(ctx, d.Name, group, id, d.sshUser)
	if errors.Is(err, ErrCleanupUnconfirmed) {
		run.Logger.Warn("bbr", "%v", err)
		return nil
	}
	if err != nil {
		where := group
		if id != "" {
			where += "/" + id
		}
		return userLeft(d.Name, d.sshUser, where, err)
	}
	return nil
}

// userLeft says which SSH user a failed Director cleanup may have left,
// and where: backup-cleanup makes and removes a user of its own, so the
// operator needs the name to remove this one.
func userLeft(deployment, user, instance string, err error) error {
	return fmt.Errorf("SSH user %s may be left on %s (the Director did not remove it; remove it with `bosh -d %s ssh %s -c 'sudo userdel -r %s'` or recreate the instance): %w",
		user, instance, deployment, instance, user, err)
}
