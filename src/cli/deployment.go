package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/director"
	"github.com/bbr-release/bbr/src/orchestrator"
)

const (
	backupCleanupAdvice  = "It is recommended that you run `bbr backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked."
	restoreCleanupAdvice = "It is recommended that you run `bbr restore-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked."
)

func deploymentCommand(ctx context.Context, version string, streams Streams) cli.Command {
	run := func(body func(c *cli.Context, o *orchestrator.Orchestrator) error) func(*cli.Context) error {
		return func(c *cli.Context) error {
			o, err := newDeploymentOrchestrator(c.Parent(), version, streams)
			if err != nil {
				return exitError(streams, err, "")
			}
			return body(c, o)
		}
	}
	return cli.Command{
		Name:   "deployment",
		Usage:  "Backup BOSH deployments",
		Flags:  deploymentFlags(),
		Before: validateDeploymentFlags,
		Subcommands: []cli.Command{
			{
				Name:    "pre-backup-check",
				Aliases: []string{"c"},
				Usage:   "Check a deployment can be backed up",
				Action: run(func(c *cli.Context, o *orchestrator.Orchestrator) error {
					name := c.Parent().String("deployment")
					if err := o.PreBackupCheck(ctx, name); err != nil {
						printTimestamped(streams, fmt.Sprintf("Deployment '%s' cannot be backed up.", name))
						advice := ""
						if orchestrator.CleanupAdvised(err) {
							advice = backupCleanupAdvice
						}
						return exitError(streams, err, advice)
					}
					printTimestamped(streams, fmt.Sprintf("Deployment '%s' can be backed up.", name))
					return nil
				}),
			},
			{
				Name:    "backup",
				Aliases: []string{"b"},
				Usage:   "Backup a deployment",
				Flags: []cli.Flag{
					cli.BoolFlag{Name: "with-manifest", Usage: "Download the deployment manifest (it contains credentials: store the artifact securely)"},
					cli.StringFlag{Name: "artifact-path, a", Usage: "Specify an optional path to save the backup artifacts to"},
					cli.BoolFlag{Name: "unsafe-lock-free", Usage: "Experimental feature to skip locking steps when backing up the BOSH deployment. Cannot be used in combination with the all-deployments flag"},
				},
				Action: run(func(c *cli.Context, o *orchestrator.Orchestrator) error {
					parent := c.String("artifact-path")
					if parent == "" {
						parent = "."
					}
					if c.Bool("with-manifest") {
						o.Logger.Warn("bbr", "--with-manifest: the manifest saved in the artifact contains the deployment's credentials; store the artifact securely")
					}
					_, err := o.Backup(ctx, orchestrator.BackupOptions{
						Deployment:     c.Parent().String("deployment"),
						ArtifactParent: parent,
						WithManifest:   c.Bool("with-manifest"),
						UnsafeLockFree: c.Bool("unsafe-lock-free"),
					})
					return exitErrorAdvised(streams, err, backupCleanupAdvice)
				}),
			},
			{
				Name:    "restore",
				Aliases: []string{"r"},
				Usage:   "Restore a deployment from backup",
				Flags: []cli.Flag{
					cli.StringFlag{Name: "artifact-path, a", Usage: "Path to the artifact to restore"},
					cli.BoolFlag{Name: "serial-restore", Usage: "Run restore scripts one instance at a time, as upstream does (default: instances in parallel)"},
				},
				Before: func(c *cli.Context) error { return requireFlags(c, "artifact-path") },
				Action: run(func(c *cli.Context, o *orchestrator.Orchestrator) error {
					err := o.Restore(ctx, orchestrator.RestoreOptions{
						Deployment:   c.Parent().String("deployment"),
						ArtifactPath: c.String("artifact-path"),
						Serial:       c.Bool("serial-restore"),
					})
					return exitErrorAdvised(streams, err, restoreCleanupAdvice)
				}),
			},
			cleanupCommand("backup-cleanup", "Cleans up a previous backup: unlocks every job and removes staged artifacts from the instances", run, streams,
				func(o *orchestrator.Orchestrator, name string) error { return o.BackupCleanup(ctx, name) }),
			cleanupCommand("restore-cleanup", "Cleans up a previous restore: unlocks every job and removes staged artifacts from the instances", run, streams,
				func(o *orchestrator.Orchestrator, name string) error { return o.RestoreCleanup(ctx, name) }),
		},
	}
}

// action wraps a subcommand body with building the orchestrator.
type action = func(body func(c *cli.Context, o *orchestrator.Orchestrator) error) func(*cli.Context) error

func cleanupCommand(name, usage string, run action, streams Streams, clean func(*orchestrator.Orchestrator, string) error) cli.Command {
	return cli.Command{
		Name:  name,
		Usage: usage,
		Action: run(func(c *cli.Context, o *orchestrator.Orchestrator) error {
			return exitError(streams, clean(o, c.Parent().String("deployment")), "")
		}),
	}
}

func deploymentFlags() []cli.Flag {
	return []cli.Flag{
		cli.StringFlag{Name: "target, t", EnvVar: "BOSH_ENVIRONMENT", Usage: "BOSH Director URL"},
		cli.StringFlag{Name: "username, u", EnvVar: "BOSH_CLIENT", Usage: "BOSH Director username"},
		cli.StringFlag{Name: "password, p", EnvVar: "BOSH_CLIENT_SECRET", Usage: "BOSH Director password"},
		cli.StringFlag{Name: "deployment, d", EnvVar: "BOSH_DEPLOYMENT", Usage: "Name of BOSH deployment"},
		cli.StringFlag{Name: "ca-cert", EnvVar: "CA_CERT,BOSH_CA_CERT", Usage: "Path or value of BOSH Director custom CA certificate"},
		cli.BoolFlag{Name: "debug", Usage: "Enable debug logs"},
		cli.IntFlag{Name: "parallelism", Value: defaultParallelism, EnvVar: "BBR_PARALLELISM",
			Usage: "How many remote operations (scripts, copies) run at once across instances (not tied to sshd's MaxStartups: one connection per instance)"},
	}
}

func validateDeploymentFlags(c *cli.Context) error {
	if err := requireFlags(c, "target", "username", "password"); err != nil {
		return err
	}
	if c.String("deployment") == "" {
		_ = cli.ShowSubcommandHelp(c)
		return cli.NewExitError("provide one of '--deployment' or '--all-deployments' flags.", 1)
	}
	if p := c.Int("parallelism"); p < 1 || p > 1000 {
		return cli.NewExitError(fmt.Sprintf("--parallelism must be between 1 and 1000, got %d.", p), 1)
	}
	return nil
}

// requireFlags fails with upstream's message for the first missing flag.
func requireFlags(c *cli.Context, names ...string) error {
	for _, a := range c.Args() {
		if a == "--help" || a == "-h" {
			return nil
		}
	}
	for _, name := range names {
		if c.String(name) == "" {
			_ = cli.ShowSubcommandHelp(c)
			return cli.NewExitError(fmt.Sprintf("--%s flag is required.", name), 1)
		}
	}
	return nil
}

func newDeploymentOrchestrator(c *cli.Context, version string, streams Streams) (*orchestrator.Orchestrator, error) {
	level := boshlog.LevelInfo
	if c.Bool("debug") {
		level = boshlog.LevelDebug
	}
	logger := boshlog.NewWriterLogger(level, streams.Out)
	caCert, err := readCACert(c.String("ca-cert"))
	if err != nil {
		return nil, err
	}
	// bosh-cli logs its HTTP traffic at debug level; keep it out of the
	// operator's log unless --debug, and it never logs credentials.
	dirLogger := boshlog.NewWriterLogger(boshlog.LevelNone, streams.Out)
	if c.Bool("debug") {
		dirLogger = logger
	}
	dir, err := director.New(director.Config{
		URL:          c.String("target"),
		Client:       c.String("username"),
		ClientSecret: c.String("password"),
		CACert:       caCert,
	}, dirLogger)
	if err != nil {
		return nil, err
	}
	return &orchestrator.Orchestrator{
		Director:       dir,
		Dial:           sshDialer(),
		Logger:         logger,
		Version:        version,
		Parallelism:    c.Int("parallelism"),
		Now:            time.Now,
		CleanupTimeout: 10 * time.Minute,
	}, nil
}

// readCACert accepts a path or the PEM itself, as upstream does.
func readCACert(value string) (string, error) {
	if value == "" || strings.Contains(value, "-----BEGIN") {
		return value, nil
	}
	raw, err := os.ReadFile(value)
	if err != nil {
		return "", fmt.Errorf("reading --ca-cert: %w (give a path to a PEM file or the PEM itself)", err)
	}
	return string(raw), nil
}

func printTimestamped(streams Streams, s string) {
	fmt.Fprintf(streams.Out, "[%s] %s\n", time.Now().UTC().Format("15:04:05"), s)
}
