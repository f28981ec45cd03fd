// Package agent does on lab instances what a BOSH agent does on VMs for
// `bosh ssh` and bbr: it creates SSH users with a public key and
// passwordless sudo, and removes them again. It implements the lab
// director's Agent interface.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/model"
)

// Agent manages SSH users for the instances of one lab. Its state is on
// disk (/etc/passwd, sudoers files, each instance's authorized_keys
// directory), so a new Agent, or SweepAll, picks up where another left.
type Agent struct {
	// mu serialises all user changes: the Director sets up one instance
	// group per task, and several groups get the same user at once.
	mu  sync.Mutex
	lab model.Lab
	log io.Writer
	// Deployments, when set, are the Director's current deployments
	// (deploys add some); otherwise the lab's at start.
	Deployments func() []model.Deployment
}

// New returns an agent for the instances of lab. log receives one line
// per change; nil discards them.
func New(lab model.Lab, log io.Writer) *Agent {
	if log == nil {
		log = io.Discard
	}
	return &Agent{lab: lab, log: log}
}

// SetUpSSH lets user log in to inst with publicKey and use sudo without a
// password. The user's home is /var/vcap/bosh_ssh/<user> on the instance.
func (a *Agent) SetUpSSH(ctx context.Context, deployment string, inst model.Instance, user, publicKey string) error {
	if err := ValidateUser(user); err != nil {
		return err
	}
	key, err := ValidateKey(publicKey)
	if err != nil {
		return err
	}
	if err := checkInstance(inst); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	acct, err := ensureUser(ctx, user)
	if err != nil {
		return err
	}
	home := instance.HomeDir(inst, user)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("creating home of %s on %s: %w", user, inst.Slug(), err)
	}
	if err := os.Chown(home, acct.UID, acct.GID); err != nil {
		return fmt.Errorf("giving %s its home on %s: %w", user, inst.Slug(), err)
	}
	if err := writeAuthorizedKey(inst, acct, key); err != nil {
		return err
	}
	fmt.Fprintf(a.log, "agent: %s/%s: user %s set up\n", deployment, inst.Slug(), user)
	return nil
}

// writeAuthorizedKey replaces the user's authorized_keys file on inst.
// sshd reads it with the user's uid, so the user owns it.
func writeAuthorizedKey(inst model.Instance, acct account, key string) error {
	file := instance.AuthorizedKeysFile(inst, acct.Name)
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(key+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing key of %s on %s: %w", acct.Name, inst.Slug(), err)
	}
	if err := os.Chown(tmp, acct.UID, acct.GID); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("giving %s its key file on %s: %w", acct.Name, inst.Slug(), err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("installing key of %s on %s: %w", acct.Name, inst.Slug(), err)
	}
	return nil
}

// CleanUpSSH removes, on inst, the key and home of every lab-made user
// whose name matches userRegex. A user left with no instance at all is
// deleted from the machine with its sudoers file.
func (a *Agent) CleanUpSSH(ctx context.Context, deployment string, inst model.Instance, userRegex string) error {
	re, err := compileUserRegex(userRegex)
	if err != nil {
		return err
	}
	if err := checkInstance(inst); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	users, err := labUsers()
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range users {
		if !re.MatchString(u.Name) {
			continue
		}
		if err := removeFromInstance(inst, u.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(a.log, "agent: %s/%s: user %s cleaned up\n", deployment, inst.Slug(), u.Name)
		if a.hasInstances(u.Name) {
			continue
		}
		if err := deleteUser(ctx, u); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(a.log, "agent: user %s deleted\n", u.Name)
	}
	return errors.Join(errs...)
}

func removeFromInstance(inst model.Instance, user string) error {
	if err := os.Remove(instance.AuthorizedKeysFile(inst, user)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing key of %s on %s: %w", user, inst.Slug(), err)
	}
	if err := os.RemoveAll(instance.HomeDir(inst, user)); err != nil {
		return fmt.Errorf("removing home of %s on %s: %w", user, inst.Slug(), err)
	}
	return nil
}

// hasInstances tells whether user still has a key on any instance of the
// lab; the key files are the record, so this survives agent restarts.
func (a *Agent) hasInstances(user string) bool {
	deployments := a.lab.Deployments
	if a.Deployments != nil {
		deployments = a.Deployments()
	}
	for _, d := range deployments {
		for _, inst := range d.Instances {
			if inst.Root == "" {
				continue
			}
			if _, err := os.Stat(instance.AuthorizedKeysFile(inst, user)); err == nil {
				return true
			}
		}
	}
	return false
}

// checkInstance refuses an instance without a usable root: every path the
// agent writes is derived from it.
func checkInstance(inst model.Instance) error {
	if inst.Root == "" || !filepath.IsAbs(inst.Root) {
		return fmt.Errorf("instance %s has no root directory", inst.Slug())
	}
	if _, err := os.Stat(instance.PathsOf(inst).AuthorizedKeys); err != nil {
		return fmt.Errorf("instance %s is not prepared: %w", inst.Slug(), err)
	}
	return nil
}

// SweepAll removes every trace of lab SSH users, for `bbr-lab down`: the
// keys and homes on lab's instances, every account whose comment is
// Comment and every lab sudoers file. It needs nothing but the machine's
// files, so it also cleans up after a crash; lab may be empty.
func SweepAll(lab model.Lab) error {
	ctx := context.Background()
	var errs []error
	users, err := labUsers()
	if err != nil {
		errs = append(errs, err)
	}
	for _, u := range users {
		for _, d := range lab.Deployments {
			for _, inst := range d.Instances {
				if inst.Root != "" {
					if err := removeFromInstance(inst, u.Name); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
		if err := deleteUser(ctx, u); err != nil {
			errs = append(errs, err)
		}
	}
	leftovers, err := filepath.Glob(filepath.Join(SudoersDir, sudoersPrefix+"*"))
	if err != nil {
		errs = append(errs, err)
	}
	temps, _ := filepath.Glob(filepath.Join(SudoersDir, "."+sudoersPrefix+"*"))
	for _, f := range append(leftovers, temps...) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", f, err))
		}
	}
	return errors.Join(errs...)
}
