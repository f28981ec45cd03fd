package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/remote"
)

// toolLockFloor is the lab's own cost of a lock window on N instances:
// the same lock, backup and unlock scripts run by the least client there
// can be. One SSH connection per instance is opened before the clock
// starts; then, as bbr does, every pre-backup-lock runs, then on every
// instance a staging directory is made and the backup script runs, then
// every post-backup-unlock, each pass across the instances with
// lockFloorParallelism sessions at once. Its lock window, read from the
// scripts' own timestamps as the tools' are, is what N instances' sudo,
// bash and sshd sessions cost on this machine's cores; a tool's lock
// window growing faster with N than this one is the tool's doing.
const toolLockFloor = "lock-floor"

// lockFloorParallelism is bbr's default --parallelism.
const lockFloorParallelism = 20

// lockFloorStaging is where the floor's backup scripts put their hard
// link: under /var/vcap/store, as bbr's staging is (the link needs the same
// filesystem), but not bbr's own directory, which bbr would take for
// another run's.
const lockFloorStaging = "/var/vcap/store/bench-lock-floor"

func (b *Bench) lockFloor(ctx context.Context, s Scenario, round int) (Run, error) {
	dep, ok := b.lab.Find(s.Deployment)
	if !ok || len(dep.Instances) == 0 {
		return Run{}, fmt.Errorf("lock floor: no deployment %s in the lab", s.Deployment)
	}
	// Before its own SSH user exists: settle waits for every lab user to
	// go.
	settle()
	keyPath, user, cleanup, err := b.sshUser(ctx, s.Deployment, s.Group, "")
	if err != nil {
		return Run{}, fmt.Errorf("lock floor: %w", err)
	}
	defer cleanup()
	raw, err := os.ReadFile(keyPath)
	if err != nil {
		return Run{}, err
	}
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		return Run{}, err
	}
	conns := make([]*ssh.Client, len(dep.Instances))
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	if err := inParallel(len(conns), lockFloorParallelism, func(i int) error {
		c, err := dialInstance(ctx, dep.Instances[i], user, signer)
		conns[i] = c
		return err
	}); err != nil {
		return Run{}, fmt.Errorf("lock floor: %w", err)
	}

	job := jobName(s, 0)
	script := func(name string) string { return fmt.Sprintf("/var/vcap/jobs/%s/bin/bbr/%s", job, name) }
	staging := lockFloorStaging + "/" + job
	passes := [][]string{
		{"sudo " + script("pre-backup-lock")},
		{"sudo mkdir -p -m 0700 " + staging, "sudo BBR_ARTIFACT_DIRECTORY=" + staging + "/ " + script("backup")},
		{"sudo " + script("post-backup-unlock")},
	}
	syscall.Sync()
	busy0, total0 := cpuTimes()
	start := time.Now()
	for _, cmds := range passes {
		if err := inParallel(len(conns), lockFloorParallelism, func(i int) error {
			for _, cmd := range cmds {
				if err := runSession(conns[i], cmd); err != nil {
					return fmt.Errorf("%s: %w", dep.Instances[i].IP, err)
				}
			}
			return nil
		}); err != nil {
			return Run{}, fmt.Errorf("lock floor: %w", err)
		}
	}
	wall := time.Since(start)
	busy := busySince(busy0, total0)
	if err := inParallel(len(conns), lockFloorParallelism, func(i int) error {
		return runSession(conns[i], "sudo rm -rf "+lockFloorStaging)
	}); err != nil {
		return Run{}, fmt.Errorf("lock floor: %w", err)
	}
	run := Run{Scenario: s.Key, Tool: toolLockFloor, Round: round, Wall: wall.Seconds(), Busy: busy}
	if run.LockWindow, run.Scripts, err = lockWindow(dep); err != nil {
		return Run{}, err
	}
	return run, nil
}

func dialInstance(ctx context.Context, inst model.Instance, user string, signer ssh.Signer) (*ssh.Client, error) {
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(inst.HostPublicKey))
	if err != nil {
		return nil, fmt.Errorf("%s's host key: %w", inst.IP, err)
	}
	addr := net.JoinHostPort(inst.IP, "22")
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey), HostKeyAlgorithms: remote.HostKeyAlgorithms(hostKey), Timeout: 30 * time.Second,
	})
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

func runSession(c *ssh.Client, cmd string) error {
	sess, err := c.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		return fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(tail(string(out), 500)))
	}
	return nil
}

// inParallel runs f(0..n-1) with at most limit at once and returns the
// first error.
func inParallel(n, limit int, f func(i int) error) error {
	sem := make(chan struct{}, limit)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
