package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bbr-release/bbr/src/lab/instance"
)

// SudoersDir is where the lab grants passwordless sudo, one file per user.
const SudoersDir = "/etc/sudoers.d"

// sudoersPrefix names the lab's sudoers files; sudo reads every file of
// SudoersDir whose name has no dot, and SweepAll removes these by prefix.
const sudoersPrefix = "bbr-lab-"

func sudoersFile(user string) string { return filepath.Join(SudoersDir, sudoersPrefix+user) }

// ensureUser returns the lab-made account user, creating it first if
// needed. A BOSH agent creates the user per VM; the lab's instances share
// /etc/passwd, so the account is created once and reused.
func ensureUser(ctx context.Context, user string) (account, error) {
	all, err := readPasswd()
	if err != nil {
		return account{}, err
	}
	if a, ok := all[user]; ok {
		if a.Comment != Comment {
			return account{}, fmt.Errorf("user %s already exists and was not made by the lab", user)
		}
		return a, writeSudoers(ctx, user)
	}
	if err := runRetrying(ctx, "useradd", "-M", "-d", instance.InstanceHome(user), "-s", "/bin/bash", "-c", Comment, user); err != nil {
		return account{}, fmt.Errorf("creating user %s: %w", user, err)
	}
	// useradd leaves the account locked ("!"), which sshd refuses without
	// PAM; "*" means no password but an usable account.
	if err := runRetrying(ctx, "usermod", "-p", "*", user); err != nil {
		return account{}, fmt.Errorf("unlocking user %s: %w", user, err)
	}
	if err := writeSudoers(ctx, user); err != nil {
		return account{}, err
	}
	all, err = readPasswd()
	if err != nil {
		return account{}, err
	}
	a, ok := all[user]
	if !ok {
		return account{}, fmt.Errorf("user %s missing from %s after useradd", user, passwdFile)
	}
	return a, nil
}

// writeSudoers grants user passwordless sudo, as BOSH SSH users have. The
// file is checked by visudo before sudo can see it: a broken sudoers file
// would break sudo for everyone on the machine.
func writeSudoers(ctx context.Context, user string) error {
	final := sudoersFile(user)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	// sudo skips names containing a dot, so the temporary file is inert.
	tmp := filepath.Join(SudoersDir, "."+sudoersPrefix+user+".tmp")
	content := fmt.Sprintf("# Made by bbr-lab; removed by SSH cleanup and bbr-lab down.\n%s ALL=(ALL) NOPASSWD: ALL\n", user)
	if err := os.WriteFile(tmp, []byte(content), 0o440); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := run(ctx, "visudo", "-cf", tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checking sudoers file for %s: %w", user, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("installing %s: %w", final, err)
	}
	return nil
}

// deleteUser ends the user's processes (userdel refuses while any run),
// removes the account and its sudoers file.
func deleteUser(ctx context.Context, a account) error {
	var errs []error
	if err := killUID(a.UID, 2*time.Second); err != nil {
		errs = append(errs, err)
	}
	err := runRetrying(ctx, "userdel", a.Name)
	var exit *exec.ExitError
	// Exit status 6: the user does not exist (someone was quicker).
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 6) {
		errs = append(errs, fmt.Errorf("deleting user %s: %w", a.Name, err))
	}
	if err := os.Remove(sudoersFile(a.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing sudoers file of %s: %w", a.Name, err))
	}
	return errors.Join(errs...)
}

// killUID ends every process running as uid: SIGTERM, then SIGKILL after
// grace. These are the user's SSH sessions and whatever they started.
func killUID(uid int, grace time.Duration) error {
	deadline := time.Now().Add(grace)
	sig := syscall.SIGTERM
	for {
		pids, err := processesOf(uid)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			if sig == syscall.SIGKILL {
				return fmt.Errorf("processes %v of uid %d survived SIGKILL", pids, uid)
			}
			sig, deadline = syscall.SIGKILL, time.Now().Add(2*time.Second)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig) // ESRCH: already gone
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processesOf lists the live processes whose real or effective uid is
// uid. Zombies are left out: they are dead, and wait for init to reap them.
func processesOf(uid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	want := strconv.Itoa(uid)
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		if ownedBy(string(status), want) {
			out = append(out, pid)
		}
	}
	return out, nil
}

// ownedBy reads a /proc/PID/status text: is it a live process whose real
// or effective uid is uid?
func ownedBy(status, uid string) bool {
	owned := false
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "State:" && f[1] == "Z":
			return false
		case len(f) >= 3 && f[0] == "Uid:": // real effective saved filesystem
			owned = f[1] == uid || f[2] == uid
		}
	}
	return owned
}

// run runs a system command and puts its output in the error.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// runRetrying runs a shadow-utils command, retrying while another process
// holds the lock on /etc/passwd or /etc/group (exit status 1 or 10), which
// happens when several labs or tests add users at once.
func runRetrying(ctx context.Context, name string, args ...string) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		err = run(ctx, name, args...)
		var exit *exec.ExitError
		if err == nil || !errors.As(err, &exit) || (exit.ExitCode() != 1 && exit.ExitCode() != 10) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
	return err
}
