package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// SSHD is the sshd binary. sshd re-executes itself per connection by
// argv[0], so it must be started by absolute path.
const SSHD = "/usr/sbin/sshd"

// jobEnv is the environment of job scripts run by the lab: a clean one, as
// monit gives on a VM, so that `bbr-lab up`'s own environment never leaks
// into a job.
var jobEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C.UTF-8",
}

// Init is the body of the hidden `bbr-lab instance-init --spec FILE`
// command. It runs in the instance's fresh mount and UTS namespaces: it sets
// the hostname, bind-mounts the instance's root at /var/vcap, starts the
// jobs and then replaces itself with sshd, so that the sshd keeps the pid
// (and the namespaces) Start recorded. It only returns on error.
func Init(specFile string) error {
	raw, err := os.ReadFile(specFile)
	if err != nil {
		return fmt.Errorf("reading init spec: %w", err)
	}
	var spec initSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("parsing init spec %s: %w", specFile, err)
	}
	if err := enterInstance(spec); err != nil {
		return err
	}
	for _, job := range spec.Jobs {
		if err := startJob(job, spec.StartTimeout); err != nil {
			return err
		}
	}
	logf("starting sshd")
	args := []string{SSHD, "-D", "-e", "-f", spec.SSHDConfig}
	if err := syscall.Exec(SSHD, args, jobEnv); err != nil {
		return fmt.Errorf("executing %s: %w", SSHD, err)
	}
	return nil
}

// enterInstance turns the current (new) namespaces into the instance's.
func enterInstance(spec initSpec) error {
	// Mounting over /var/vcap in the host's namespace would hide every
	// other instance's root: refuse unless we really are in a namespace of
	// our own, not the one of whoever wrote the spec or started us (e.g.
	// someone running instance-init by hand).
	self, err := mountNS(os.Getpid())
	if err != nil {
		return err
	}
	host := []string{spec.HostMountNS}
	for _, pid := range []int{os.Getppid(), 1} {
		if ns, err := mountNS(pid); err == nil {
			host = append(host, ns)
		}
	}
	if spec.HostMountNS == "" || slices.Contains(host, self) {
		return errors.New("instance-init must run in its own mount namespace (it is started by bbr-lab up)")
	}
	// Start asks Go to make / private already; doing it again costs
	// nothing and keeps the mounts below off the host whatever started us.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := syscall.Sethostname([]byte(spec.Hostname)); err != nil {
		return fmt.Errorf("setting hostname %s: %w", spec.Hostname, err)
	}
	if err := syscall.Mount(spec.Root, "/var/vcap", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s on /var/vcap: %w", spec.Root, err)
	}
	if err := syscall.Mount(spec.Hosts, "/etc/hosts", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s on /etc/hosts: %w", spec.Hosts, err)
	}
	logf("hostname %s, /var/vcap is %s", spec.Hostname, spec.Root)
	return nil
}

// startJob runs /var/vcap/jobs/<job>/bin/start if the job has one, with
// its output in /var/vcap/sys/log/<job>/start.log. Daemons it leaves
// behind stay in the instance's namespace; Stop finds them there.
func startJob(job string, timeout time.Duration) error {
	script := filepath.Join("/var/vcap/jobs", job, "bin", "start")
	if _, err := os.Stat(script); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	logDir := filepath.Join("/var/vcap/sys/log", job)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", logDir, err)
	}
	logFile := filepath.Join(logDir, "start.log")
	start := time.Now()
	logf("starting job %s", job)
	if err := runScript(script, logFile, timeout); err != nil {
		return fmt.Errorf("starting job %s (see %s inside the instance): %w", job, logFile, err)
	}
	logf("job %s started in %s", job, time.Since(start).Round(time.Millisecond))
	return nil
}

// runScript runs a job script with the lab's clean environment, output
// appended to logFile, killing its whole process group on timeout.
// Output goes to a file, not a pipe, so that daemons the script leaves
// running cannot keep the wait open.
func runScript(script, logFile string, timeout time.Duration, prefix ...string) error {
	out, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening %s: %w", logFile, err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append(append([]string{}, prefix...), script)
	for attempt := 1; ; attempt++ {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = "/"
		cmd.Env = jobEnv
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		err := cmd.Run()
		// ETXTBSY: bbr-lab wrote the script while it forked another
		// instance, whose copy of the write descriptor lives until its
		// exec (Go issue 22315). It passes within milliseconds.
		if errors.Is(err, syscall.ETXTBSY) && attempt < 50 && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("%s timed out after %s", script, timeout)
		}
		return fmt.Errorf("%s: %w", script, err)
	}
}

// logf writes to stderr, which Start points at the instance's log file.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s instance-init: %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}
