package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bbr-release/bbr/src/lab/model"
)

// StopTimeout bounds each job's bin/stop.
const StopTimeout = 30 * time.Second

// killGrace is how long processes get to exit after SIGTERM.
const killGrace = 5 * time.Second

// Stop runs each job's bin/stop inside the instance (last job first, as
// monit stops them) and then ends every process left in the instance's
// mount namespace. It needs only what lab.json recorded, so it also stops
// an instance whose sshd has died. Stopping a stopped instance does
// nothing.
func Stop(ctx context.Context, inst model.Instance, log io.Writer) error {
	if err := checkForeignNS(inst.MountNS); err != nil {
		return fmt.Errorf("stopping %s: %w", inst.Slug(), err)
	}
	procs, err := inNamespace(inst.MountNS)
	if err != nil {
		return err
	}
	if len(procs) == 0 {
		logTo(log, "instance %s: nothing running", inst.Slug())
		return nil
	}
	// Namespace numbers are reused once a namespace dies (after a reboot,
	// say): only act on one whose /var/vcap still is this instance's root.
	if !mountsRoot(procs[0], inst.Root) {
		logTo(log, "instance %s: namespace %s no longer holds its /var/vcap; left alone", inst.Slug(), inst.MountNS)
		return nil
	}
	// Enter through the sshd if it lives, else through any survivor.
	enter := procs[0]
	if ns, err := mountNS(inst.SSHDPid); err == nil && ns == inst.MountNS {
		enter = inst.SSHDPid
	}
	var errs []error
	for i := len(inst.Jobs) - 1; i >= 0; i-- {
		if err := stopJob(ctx, inst, inst.Jobs[i], enter); err != nil {
			// Keep going: the kill below stops what bin/stop did not.
			errs = append(errs, err)
		}
	}
	if err := KillNamespace(inst.MountNS, killGrace); err != nil {
		errs = append(errs, fmt.Errorf("stopping %s: %w", inst.Slug(), err))
	}
	logTo(log, "instance %s stopped", inst.Slug())
	return errors.Join(errs...)
}

func stopJob(ctx context.Context, inst model.Instance, job string, pid int) error {
	if _, err := os.Stat(filepath.Join(inst.Root, "jobs", job, "bin", "stop")); err != nil {
		return nil
	}
	logDir := filepath.Join(inst.Root, "sys", "log", job)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", logDir, err)
	}
	timeout := StopTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	script := filepath.Join("/var/vcap/jobs", job, "bin", "stop")
	nsenter := []string{"nsenter", "-t", fmt.Sprint(pid), "-m", "-u", "--"}
	if err := runScript(script, filepath.Join(logDir, "stop.log"), timeout, nsenter...); err != nil {
		return fmt.Errorf("stopping job %s on %s: %w", job, inst.Slug(), err)
	}
	return nil
}

// Sweep ends every instance of the lab in labDir without lab.json, for
// `bbr-lab down` after a crash: it finds the namespaces of processes whose
// command line names a file of the lab's instances (sshd's -f config,
// instance-init's --spec) and of processes whose /var/vcap is bind-mounted
// from the lab's instances directory, and kills them all. It returns how
// many namespaces it ended.
func Sweep(labDir string) (int, error) {
	labDir = filepath.Clean(labDir)
	all, err := pids()
	if err != nil {
		return 0, err
	}
	marker := filepath.Join(labDir, InstancesDir) + "/"
	seen := map[string]bool{}
	var found []string
	for _, pid := range all {
		ns, err := mountNS(pid)
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		if checkForeignNS(ns) != nil {
			continue
		}
		root, mounted := vcapMountRoot(pid)
		if strings.Contains(cmdline(pid), marker) || (mounted && isLabRoot(labDir, root)) {
			found = append(found, ns)
		} else {
			// Another process of this namespace may still match.
			delete(seen, ns)
		}
	}
	var errs []error
	for _, ns := range found {
		if err := KillNamespace(ns, killGrace); err != nil {
			errs = append(errs, err)
		}
	}
	return len(found), errors.Join(errs...)
}

// mountsRoot tells whether pid's /var/vcap is the bind mount of root (a
// host path). The mount table gives the directory relative to its
// filesystem, which is a suffix of the host path.
func mountsRoot(pid int, root string) bool {
	got, ok := vcapMountRoot(pid)
	if !ok || got == "/" {
		return false
	}
	return root == got || strings.HasSuffix(root, got) && strings.HasPrefix(got, "/")
}

// isLabRoot tells whether a /var/vcap mount's root field (the directory's
// path inside its filesystem, which may be mounted anywhere on the host)
// is <labDir>/instances/<deployment>/<name>/root.
func isLabRoot(labDir, root string) bool {
	if filepath.Base(root) != "root" {
		return false
	}
	instances := filepath.Dir(filepath.Dir(filepath.Dir(root)))
	if filepath.Base(instances) != InstancesDir {
		return false
	}
	prefix := filepath.Dir(instances) // the lab dir as seen in its filesystem
	if prefix == "/" {
		return true
	}
	return labDir == prefix || strings.HasSuffix(labDir, prefix)
}
