package instance

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mountNS returns the mount namespace of pid as readlink prints it
// ("mnt:[4026532301]"). Zombies and gone processes have none.
func mountNS(pid int) (string, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		return "", fmt.Errorf("reading mount namespace of pid %d: %w", pid, err)
	}
	return ns, nil
}

// pids lists every process on the machine.
func pids() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// inNamespace lists the processes whose mount namespace is ns.
func inNamespace(ns string) ([]int, error) {
	all, err := pids()
	if err != nil {
		return nil, err
	}
	var out []int
	for _, pid := range all {
		if got, err := mountNS(pid); err == nil && got == ns {
			out = append(out, pid)
		}
	}
	return out, nil
}

// checkForeignNS refuses the host's own mount namespace: killing "every
// process in it" would kill the machine.
func checkForeignNS(ns string) error {
	if ns == "" {
		return errors.New("no mount namespace recorded")
	}
	for _, pid := range []int{os.Getpid(), 1} {
		if host, err := mountNS(pid); err == nil && host == ns {
			return fmt.Errorf("mount namespace %s is the host's, not an instance's", ns)
		}
	}
	return nil
}

// KillNamespace ends every process in mount namespace ns: SIGTERM, up to
// grace for them to exit, then SIGKILL. It works from the recorded
// namespace alone, so it also cleans up after a crashed sshd.
func KillNamespace(ns string, grace time.Duration) error {
	if err := checkForeignNS(ns); err != nil {
		return err
	}
	left, err := signalUntilGone(ns, syscall.SIGTERM, grace)
	if err != nil || len(left) == 0 {
		return err
	}
	left, err = signalUntilGone(ns, syscall.SIGKILL, 2*time.Second)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("processes %v of mount namespace %s survived SIGKILL", left, ns)
	}
	return nil
}

// signalUntilGone sends sig to the namespace's processes, and again to any
// that appear (a dying parent may still fork), until none are left or wait
// has passed; it returns the survivors.
func signalUntilGone(ns string, sig syscall.Signal, wait time.Duration) ([]int, error) {
	deadline := time.Now().Add(wait)
	signalled := map[int]bool{}
	for {
		left, err := inNamespace(ns)
		if err != nil || len(left) == 0 {
			return left, err
		}
		if time.Now().After(deadline) {
			return left, nil
		}
		for _, pid := range left {
			if !signalled[pid] {
				// ESRCH only means it is already gone.
				_ = syscall.Kill(pid, sig)
				signalled[pid] = true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdline returns the arguments of pid joined by spaces ("" if gone).
func cmdline(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
}

// vcapMountRoot returns the "root" field of the mount at /var/vcap in pid's
// mount table: the bind-mounted directory, relative to its filesystem.
func vcapMountRoot(pid int) (string, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// 63 43 254:0 /var/lib/bbr-lab/instances/d/g-0/root /var/vcap rw,... - ext4 ...
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == "/var/vcap" {
			return unescapeMountinfo(fields[3]), true
		}
	}
	return "", false
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
