package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bbr-release/bbr/src/lab/model"
)

// directorReadyTimeout bounds the wait for the Director's /info after its
// daemon starts.
const directorReadyTimeout = 15 * time.Second

// startDirector runs `bbr-lab director-serve --dir DIR` as a daemon (its
// own session, output in DIR/director.log, pid in DIR/director.pid) and
// waits until https://ADDRESS/info answers with a certificate of the lab CA.
func startDirector(ctx context.Context, lab model.Lab, self string, caPEM []byte) error {
	logPath := filepath.Join(lab.Dir, directorLog)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", logPath, err)
	}
	defer logFile.Close()
	cmd := exec.Command(self, "director-serve", "--dir", lab.Dir)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the Director daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pidFile := filepath.Join(lab.Dir, directorPid)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("writing %s: %w", pidFile, err)
	}
	if err := waitForDirector(ctx, lab.Director, caPEM, exited); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("the Director did not come up: %w (see %s)", err, logPath)
	}
	return nil
}

func waitForDirector(ctx context.Context, d model.Director, caPEM []byte, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, directorReadyTimeout)
	defer cancel()
	var last error
	for {
		if last = directorInfo(ctx, d, caPEM); last == nil {
			if d.Auth != "uaa" {
				return nil
			}
			if last = dialOnce(ctx, d.UAAAddress); last == nil {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("director-serve exited (%v)", err)
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// directorInfo asks the Director's unauthenticated /info, trusting only
// the lab CA.
func directorInfo(ctx context.Context, d model.Director, caPEM []byte) error {
	tlsConfig, err := tlsClientConfig(caPEM)
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+d.Address+"/info", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /info: %s", resp.Status)
	}
	return nil
}

func dialOnce(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// directorPids finds the lab's Director daemons: the pid file's process if
// it still is ours, and any `bbr-lab director-serve --dir DIR` (a crash may
// have lost the pid file).
func directorPids(dir string) []int {
	var out []int
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && isDirectorServe(pid, dir) {
			out = append(out, pid)
		}
	}
	return out
}

func isDirectorServe(pid int, dir string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	return len(args) == 4 && args[1] == "director-serve" && args[2] == "--dir" && args[3] == dir
}

// stopDirector ends the lab's Director daemons: SIGTERM, then SIGKILL.
func stopDirector(dir string) (int, error) {
	pids := directorPids(dir)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for isDirectorServe(pid, dir) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				time.Sleep(100 * time.Millisecond)
				if isDirectorServe(pid, dir) {
					return len(pids), fmt.Errorf("director-serve (pid %d) survived SIGKILL", pid)
				}
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := os.Remove(filepath.Join(dir, directorPid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return len(pids), err
	}
	return len(pids), nil
}
