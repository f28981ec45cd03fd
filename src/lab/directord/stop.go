package directord

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bbr-release/bbr/src/lab/labdir"
)

// pids finds the lab's Director daemons: any `bbr-lab director-serve
// --dir DIR`, the pid file's process among them if it still is ours (a
// crash may have lost the pid file).
func pids(dir string) []int {
	var out []int
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && isServing(pid, dir) {
			out = append(out, pid)
		}
	}
	return out
}

// isServing says whether pid is `bbr-lab director-serve --dir DIR`: a
// pid alone may have been reused by anything.
func isServing(pid int, dir string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	return len(args) == 4 && args[1] == "director-serve" && args[2] == "--dir" && args[3] == dir
}

// Stop ends the lab's Director daemons: SIGTERM, then SIGKILL. It says
// how many it found.
func Stop(dir string) (int, error) {
	found := pids(dir)
	for _, pid := range found {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range found {
		if err := waitGone(pid, dir, deadline); err != nil {
			return len(found), err
		}
	}
	if err := os.Remove(filepath.Join(dir, labdir.DirectorPid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return len(found), err
	}
	return len(found), nil
}

// waitGone waits for a daemon sent SIGTERM to exit, and SIGKILLs it once
// the deadline has passed.
func waitGone(pid int, dir string, deadline time.Time) error {
	for isServing(pid, dir) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
			if isServing(pid, dir) {
				return fmt.Errorf("director-serve (pid %d) survived SIGKILL", pid)
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// PidNote is what status says of the daemon: " (pid N)", " (daemon not
// running)", or nothing when there is no pid file.
func PidNote(dir string) string {
	raw, err := os.ReadFile(filepath.Join(dir, labdir.DirectorPid))
	if err != nil {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || !isServing(pid, dir) {
		return " (daemon not running)"
	}
	return fmt.Sprintf(" (pid %d)", pid)
}
