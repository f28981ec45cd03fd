package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bbr-release/bbr/src/lab/director"
	"github.com/bbr-release/bbr/src/lab/model"
)

// ErrandOutputLimit is how much of each stream an errand's result keeps:
// its last 10 KiB, as the BOSH agent keeps.
const ErrandOutputLimit = 10 << 10

// ErrandStopGrace is how long a cancelled errand has, after SIGTERM to
// its process group, before SIGKILL: the BOSH agent's TerminateNicely.
const ErrandStopGrace = 10 * time.Second

// ErrandCommand is bin/run of job inside inst's namespaces, as root, with
// the agent's clean environment, in a process group of its own.
func ErrandCommand(inst model.Instance, job string) *exec.Cmd {
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(inst.SSHDPid), "-m", "-u", "--",
		"/var/vcap/jobs/"+job+"/bin/run")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A child left holding the output must not hold the result forever.
	cmd.WaitDelay = ErrandStopGrace + 5*time.Second
	return cmd
}

// RunErrand runs the errand job on inst until it exits; when ctx ends
// first, its process group gets SIGTERM, then SIGKILL after
// ErrandStopGrace. The job's logs come back as a .tgz.
func (a *Agent) RunErrand(ctx context.Context, inst model.Instance, job string) (director.ErrandResult, error) {
	if err := checkInstance(inst); err != nil {
		return director.ErrandResult{}, err
	}
	var stdout, stderr bytes.Buffer
	cmd := ErrandCommand(inst, job)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	fmt.Fprintf(a.log, "agent: running errand %s on %s\n", job, inst.Slug())
	if err := cmd.Start(); err != nil {
		return director.ErrandResult{}, fmt.Errorf("starting errand %s: %w", job, err)
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(ErrandStopGrace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	err := cmd.Wait()
	close(exited)
	res := director.ErrandResult{ExitCode: 0, Stdout: tail(stdout.Bytes()), Stderr: tail(stderr.Bytes())}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode() // -1 when killed by a signal
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			res.ExitCode = 128 + int(status.Signal())
		}
	case err != nil:
		return res, fmt.Errorf("running errand %s: %w", job, err)
	}
	logs, err := packLogs(filepath.Join(inst.Root, "sys", "log", job))
	if err != nil {
		return res, fmt.Errorf("packing the logs of errand %s: %w", job, err)
	}
	res.Logs = logs
	return res, nil
}

func tail(b []byte) string {
	if len(b) > ErrandOutputLimit {
		b = b[len(b)-ErrandOutputLimit:]
	}
	return string(b)
}

// packLogs is a .tgz of dir's regular files, named ./<file> (empty when
// dir does not exist).
func packLogs(dir string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == dir {
			return fs.SkipAll
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = "./" + filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = tw.Write(raw[:min(int64(len(raw)), hdr.Size)])
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
