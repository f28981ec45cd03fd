// Package directord is the lab's Director as a process: `bbr-lab up`
// starts `bbr-lab director-serve --dir DIR` as a daemon and waits for its
// API, `status` asks it, `down` finds and stops it (by its command line,
// since a crash may have lost the pid file).
package directord

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bbr-release/bbr/src/lab/labdir"
	"github.com/bbr-release/bbr/src/lab/model"
)

// readyTimeout bounds the wait for the Director's /info after its daemon
// starts.
const readyTimeout = 15 * time.Second

// Start runs `SELF director-serve --dir DIR` as a daemon (its own session,
// output in DIR/director.log, pid in DIR/director.pid) and waits until
// https://ADDRESS/info answers with a certificate of the lab CA.
func Start(ctx context.Context, lab model.Lab, self string, caPEM []byte) error {
	logPath := filepath.Join(lab.Dir, labdir.DirectorLog)
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
	pidFile := filepath.Join(lab.Dir, labdir.DirectorPid)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("writing %s: %w", pidFile, err)
	}
	if err := waitReady(ctx, lab.Director, caPEM, exited); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("the Director did not come up: %w (see %s)", err, logPath)
	}
	return nil
}

// waitReady polls /info (and the UAA's port, with --auth uaa) until both
// answer, the daemon exits, or readyTimeout passes.
func waitReady(ctx context.Context, d model.Director, caPEM []byte, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if last = Info(ctx, d, caPEM); last == nil {
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

// Info asks the Director's unauthenticated /info, trusting only the lab
// CA.
func Info(ctx context.Context, d model.Director, caPEM []byte) error {
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

// tlsClientConfig trusts only the lab CA, for readiness and status checks.
func tlsClientConfig(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the lab CA certificate does not parse")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func dialOnce(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}
