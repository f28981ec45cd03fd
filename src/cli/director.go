package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	"github.com/urfave/cli"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bbr-release/bbr/src/orchestrator"
	"github.com/bbr-release/bbr/src/remote"
	"github.com/bbr-release/bbr/src/report"
)

// directorCommand is `bbr director`: the BOSH Director VM itself, reached
// over SSH with an operator's key, named bosh/0 in the artifact.
func directorCommand(s session) cli.Command {
	ctx, streams := s.ctx, s.streams
	backups := &backupRun{} // --artifact-path and the report
	restores := &reporting{}
	run := func(advice string, b body) func(*cli.Context) error {
		return func(c *cli.Context) error {
			out, meter, stopBars := s.terminal(c)
			o, name, err := newDirectorOrchestrator(c.Parent(), s, out)
			if err != nil {
				stopBars()
				name := remote.HostName(c.Parent().String("host"))
				switch c.Command.Name { // a key that does not read: still a failed run to report
				case "backup":
					backups.reports.record(ctx, s, c, nil, report.KindDirector, name, time.Now(), "", err, nil)
				case "restore":
					restores.recordRestore(ctx, s, c, report.KindDirector, name, time.Now(), nil, err)
				}
				return exitError(streams, err, "")
			}
			o.Meter = meter
			err = b(c, o, name)
			stopBars()
			return exitErrorAdvised(s, err, advice)
		}
	}
	return cli.Command{
		Name:  "director",
		Usage: "Backup BOSH director",
		Flags: directorFlags(),
		Before: func(c *cli.Context) error {
			if err := requireFlags(c, "host", "username", "private-key-path"); err != nil {
				return err
			}
			return validateDurations(c)
		},
		Subcommands: []cli.Command{
			{
				Name:    "pre-backup-check",
				Aliases: []string{"c"},
				Usage:   "Check a BOSH Director can be backed up",
				Action: run(backupCleanupAdvice, func(_ *cli.Context, o *orchestrator.Orchestrator, name string) error {
					if err := o.PreBackupCheck(ctx, name); err != nil {
						fmt.Fprintln(streams.Out, "Director cannot be backed up.")
						return err
					}
					fmt.Fprintln(streams.Out, "Director can be backed up.")
					return nil
				}),
			},
			{
				Name:    "backup",
				Aliases: []string{"b"},
				Usage:   "Backup a BOSH Director",
				Flags:   withBackupFlags(artifactPathFlag, skipSpaceCheckFlag),
				Before:  func(c *cli.Context) error { return checkDestination(streams, c) },
				Action: run(backupCleanupAdvice, func(c *cli.Context, o *orchestrator.Orchestrator, name string) error {
					return backupTo(ctx, s, c, backups, report.KindDirector, o, orchestrator.BackupOptions{Deployment: name, SkipSpaceCheck: c.Bool("skip-space-check")})
				}),
			},
			{
				Name:    "restore",
				Aliases: []string{"r"},
				Usage:   "Restore a deployment from backup",
				Flags:   withRestoreFlags(restorePathFlag),
				Before: func(c *cli.Context) error {
					if err := requireFlags(c, "artifact-path"); err != nil {
						return err
					}
					if err := checkReporting(streams, c); err != nil {
						return err
					}
					return checkRestoreSource(streams, c)
				},
				Action: run(restoreCleanupAdvice, func(c *cli.Context, o *orchestrator.Orchestrator, name string) error {
					return restoreFrom(ctx, s, c, restores, report.KindDirector, o, orchestrator.RestoreOptions{Deployment: name})
				}),
			},
			{
				Name:  "backup-cleanup",
				Usage: "Cleans up a director backup: unlocks every job and removes staged artifacts",
				Flags: []cli.Flag{forceFlag},
				Action: run("", func(c *cli.Context, o *orchestrator.Orchestrator, name string) error {
					return o.BackupCleanup(ctx, name, c.Bool("force"))
				}),
			},
			{
				Name:  "restore-cleanup",
				Usage: "Cleans up a director restore: unlocks every job and removes staged artifacts",
				Flags: []cli.Flag{forceFlag},
				Action: run("", func(c *cli.Context, o *orchestrator.Orchestrator, name string) error {
					return o.RestoreCleanup(ctx, name, c.Bool("force"))
				}),
			},
		},
	}
}

func directorFlags() []cli.Flag {
	return []cli.Flag{
		cli.StringFlag{Name: "host", Usage: "BOSH Director hostname, with an optional port. Port defaults to 22"},
		cli.StringFlag{Name: "username, u", Usage: "BOSH Director SSH username"},
		cli.StringFlag{Name: "private-key-path, key", Usage: "BOSH Director SSH private key"},
		cli.StringFlag{Name: "known-hosts", EnvVar: "BBR_KNOWN_HOSTS",
			Usage: "known_hosts file holding the Director VM's host key (default ~/.ssh/known_hosts when it lists the host)"},
		scriptTimeoutFlag,
		progressIntervalFlag,
		parallelismFlag,
		cli.BoolFlag{Name: "debug", Usage: "Enable debug logs"},
	}
}

// newDirectorOrchestrator builds the workflows on the VM the flags name,
// and the name its backups take.
func newDirectorOrchestrator(c *cli.Context, s session, out io.Writer) (*orchestrator.Orchestrator, string, error) {
	logger := newLogger(c, out)
	raw, err := os.ReadFile(c.String("private-key-path"))
	if err != nil {
		return nil, "", fmt.Errorf("reading --private-key-path: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		return nil, "", fmt.Errorf("--private-key-path %s is not a usable private key (an unencrypted PEM or OpenSSH key is needed): %w", c.String("private-key-path"), err)
	}
	addr := remote.HostAddress(c.String("host"))
	check, algorithms, err := directorHostKeyCheck(c.String("known-hosts"), addr, func(key ssh.PublicKey) {
		logger.Warn("bbr", "the host key of %s (%s %s) is not verified: pass --known-hosts with a file that lists it to pin it",
			addr, key.Type(), ssh.FingerprintSHA256(key))
	})
	if err != nil {
		return nil, "", err
	}
	name := remote.HostName(c.String("host"))
	return s.standalone(logger, flagSettings(c), name, remote.Config{
		Addr:              addr,
		User:              c.String("username"),
		Signer:            signer,
		HostKeyCallback:   check,
		HostKeyAlgorithms: algorithms,
	}), name, nil
}

// standalone is the workflows against one VM reached over SSH as cfg
// says (the Director's, named name in its backups), for `bbr director`
// and the errand's bosh_director alike.
func (s session) standalone(logger boshlog.Logger, set settings, name string, cfg remote.Config) *orchestrator.Orchestrator {
	cfg.ConnectTimeout, cfg.KeepAliveInterval = 30*time.Second, 30*time.Second
	return s.orchestrator(&orchestrator.Standalone{Name: name, Dial: func(ctx context.Context) (orchestrator.InstanceConn, error) {
		return dialInstance(ctx, cfg)
	}}, logger, set)
}

// directorHostKeyCheck verifies the Director VM's host key against a
// known_hosts file: the one given, else ~/.ssh/known_hosts when it lists
// the host. Upstream never checks this key; with no file listing the host
// we do the same for compatibility, but say so (unverified is called with
// the key). algorithms are the host key algorithms to ask addr for, so
// that a VM with keys of several types shows one the file lists.
func directorHostKeyCheck(file, addr string, unverified func(ssh.PublicKey)) (check ssh.HostKeyCallback, algorithms []string, err error) {
	if file != "" {
		cb, err := knownhosts.New(file)
		if err != nil {
			return nil, nil, fmt.Errorf("reading --known-hosts: %w", err)
		}
		return cb, knownAlgorithms(cb, addr), nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		if cb, err := knownhosts.New(filepath.Join(home, ".ssh", "known_hosts")); err == nil {
			return func(hostname string, remoteAddr net.Addr, key ssh.PublicKey) error {
				err := cb(hostname, remoteAddr, key)
				var keyErr *knownhosts.KeyError
				if errors.As(err, &keyErr) && len(keyErr.Want) == 0 {
					unverified(key) // the file does not list this host
					return nil
				}
				return err
			}, knownAlgorithms(cb, addr), nil
		}
	}
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		unverified(key)
		return nil
	}, nil, nil
}

// knownAlgorithms finds the keys a known_hosts callback lists for addr by
// showing it a key no file lists: the KeyError names the known keys.
// None listed gives nil, which asks for any algorithm.
func knownAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probe), &keyErr) {
		return nil
	}
	keys := make([]ssh.PublicKey, len(keyErr.Want))
	for i, k := range keyErr.Want {
		keys[i] = k.Key
	}
	return remote.HostKeyAlgorithms(keys...)
}
