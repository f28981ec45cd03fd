package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/bbr-release/bbr/src/lab/model"
)

// Start prepares the instance's files and starts it: `LabBin
// instance-init` in new mount and UTS namespaces, which starts the jobs and
// becomes the instance's sshd. Start returns once sshd accepts TCP
// connections on IP:22. On failure nothing of the instance keeps running.
func Start(ctx context.Context, s Spec) (model.Instance, error) {
	inst := s.Instance
	name := fmt.Sprintf("%s/%d", inst.Group, inst.Index)
	if net.ParseIP(inst.IP) == nil || !net.ParseIP(inst.IP).IsLoopback() {
		return inst, fmt.Errorf("instance %s: IP %q is not a loopback address", name, inst.IP)
	}
	if err := os.MkdirAll("/var/vcap", 0o755); err != nil {
		return inst, fmt.Errorf("creating the /var/vcap mount point: %w", err)
	}
	// sshd's privilege separation directory; a VM's sshd package makes it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return inst, fmt.Errorf("creating /run/sshd: %w", err)
	}
	p := PathsFor(s.LabDir, s.Deployment, inst.Group, inst.Index)
	pub, err := prepare(s, p)
	if err != nil {
		return inst, fmt.Errorf("preparing instance %s: %w", name, err)
	}
	inst.Root, inst.HostPublicKey = p.Root, pub

	pid, ns, exited, err := spawn(s.LabBin, p)
	if err != nil {
		return inst, fmt.Errorf("starting instance %s: %w", name, err)
	}
	inst.SSHDPid, inst.MountNS = pid, ns
	timeout := s.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	timeout = timeout*time.Duration(len(inst.Jobs)) + 10*time.Second
	if err := waitForSSHD(ctx, inst.IP, exited, timeout); err != nil {
		// Jobs may have left daemons behind before failing.
		_ = KillNamespace(ns, 2*time.Second)
		return inst, fmt.Errorf("starting instance %s: %w\n%s", name, err, tail(p.Log, 20))
	}
	logTo(s.Log, "instance %s/%s (%s) up at %s, sshd pid %d", s.Deployment, name, inst.ID, inst.IP, pid)
	return inst, nil
}

// spawn starts instance-init detached from our session (it must outlive
// `bbr-lab up`), with its output in the instance log. Go unshares the
// namespaces between fork and exec and makes / private there, so when Start
// returns the child already is in the instance's mount namespace.
func spawn(labBin string, p Paths) (int, string, <-chan struct{}, error) {
	logFile, err := os.OpenFile(p.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, "", nil, fmt.Errorf("opening %s: %w", p.Log, err)
	}
	defer logFile.Close()
	cmd := exec.Command(labBin, "instance-init", "--spec", p.InitSpec)
	cmd.Dir = "/"
	cmd.Env = jobEnv
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:       true,
		Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
	}
	if err := cmd.Start(); err != nil {
		return 0, "", nil, fmt.Errorf("running %s instance-init: %w", labBin, err)
	}
	exited := make(chan struct{})
	// Reap it if it dies while we live (long-running callers such as
	// tests); a detached `bbr-lab up` exits and hands it to init.
	go func() { _ = cmd.Wait(); close(exited) }()
	ns, err := mountNS(cmd.Process.Pid)
	if err == nil {
		err = checkForeignNS(ns)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		return 0, "", nil, err
	}
	return cmd.Process.Pid, ns, exited, nil
}

// waitForSSHD polls ip:22 until it accepts a connection, the instance's
// process exits or timeout passes.
func waitForSSHD(ctx context.Context, ip string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(ip, "22")
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-exited:
			return errors.New("instance-init exited before sshd listened")
		case <-ctx.Done():
			return fmt.Errorf("sshd not listening on %s after %s: %w", addr, timeout, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of file, to show why an instance failed.
func tail(file string, n int) string {
	raw, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", file, bytes.Join(lines, []byte("\n")))
}

func logTo(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
