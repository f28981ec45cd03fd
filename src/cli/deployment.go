package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/bucket"
	"github.com/bbr-release/bbr/src/director"
	"github.com/bbr-release/bbr/src/orchestrator"
	"github.com/bbr-release/bbr/src/report"
)

const (
	backupCleanupAdvice  = "It is recommended that you run `bbr backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked."
	restoreCleanupAdvice = "It is recommended that you run `bbr restore-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked."
)

const allDeploymentsUnsupported = "--all-deployments is supported only for pre-backup-check, backup and backup-cleanup: name the deployment with --deployment."

// body is one subcommand's work on one deployment; it returns the raw
// workflow error, which the caller turns into output and an exit code.
type body = func(c *cli.Context, o *orchestrator.Orchestrator, name string) error

func deploymentCommand(s session) cli.Command {
	ctx, streams := s.ctx, s.streams
	backups := &backupRun{} // --artifact-path and the report, shared by every deployment of the run
	restores := &reporting{}
	// run runs b against --deployment, or with --all-deployments against
	// every deployment when the subcommand supports it (all is not nil).
	// The local checks run first, before the Director is contacted.
	run := func(advice string, all func(*cli.Context) allDeployments, b body, checks ...func(Streams, *cli.Context) error) func(*cli.Context) error {
		return func(c *cli.Context) error {
			parent := c.Parent()
			if parent.Bool("all-deployments") && all == nil {
				return cli.NewExitError(allDeploymentsUnsupported, 1)
			}
			for _, check := range checks {
				if err := check(streams, c); err != nil {
					return err
				}
			}
			if parent.Bool("all-deployments") {
				return all(c).runAll(s, parent, func(o *orchestrator.Orchestrator, name string) error {
					return b(c, o, name)
				})
			}
			out, meter, stopBars := s.terminal(c)
			o, err := newDeploymentOrchestrator(parent, s, newLogger(parent, out))
			if err != nil {
				stopBars()
				switch c.Command.Name { // no Director: still a failed backup or restore to report
				case "backup":
					backups.reports.record(ctx, s, c, nil, report.KindDeployment, parent.String("deployment"), time.Now(), "", err, nil)
				case "restore":
					restores.recordRestore(ctx, s, c, report.KindDeployment, parent.String("deployment"), time.Now(), nil, err)
				}
				return exitError(streams, err, "")
			}
			o.Meter = meter
			err = b(c, o, parent.String("deployment"))
			stopBars()
			return exitErrorAdvised(s, err, advice)
		}
	}
	return cli.Command{
		Name:  "deployment",
		Usage: "Backup BOSH deployments",
		Flags: deploymentFlags(),
		Before: func(c *cli.Context) error {
			if passwordInArgs(s.args) {
				fmt.Fprintln(streams.Err, "Warning: --password on the command line is visible to other users of this machine (ps, /proc); set BOSH_CLIENT_SECRET instead.")
			}
			return validateDeploymentFlags(c)
		},
		Subcommands: []cli.Command{
			{
				Name:    "pre-backup-check",
				Aliases: []string{"c"},
				Usage:   "Check a deployment can be backed up",
				Action: run(backupCleanupAdvice, func(*cli.Context) allDeployments {
					return allDeployments{failed: "cannot be backed up", succeeded: "can be backed up", advise: orchestrator.CleanupAdvised}
				}, func(c *cli.Context, o *orchestrator.Orchestrator, name string) error {
					if err := o.PreBackupCheck(ctx, name); err != nil {
						printTimestamped(streams, fmt.Sprintf("Deployment '%s' cannot be backed up.", name))
						return err
					}
					printTimestamped(streams, fmt.Sprintf("Deployment '%s' can be backed up.", name))
					return nil
				}),
			},
			{
				Name:    "backup",
				Aliases: []string{"b"},
				Usage:   "Backup a deployment",
				Flags: withBackupFlags(
					cli.BoolFlag{Name: "with-manifest", Usage: "Download the deployment manifest (it contains credentials: store the artifact securely)"},
					artifactPathFlag,
					cli.BoolFlag{Name: "unsafe-lock-free", Usage: "Experimental feature to skip locking steps when backing up the BOSH deployment. Cannot be used in combination with the all-deployments flag"},
					skipSpaceCheckFlag,
				),
				Before: func(c *cli.Context) error {
					if c.Bool("unsafe-lock-free") && c.Parent().Bool("all-deployments") {
						return exitError(streams, errors.New("Cannot use the --unsafe-lock-free flag in conjunction with the --all-deployments flag"), "") //nolint:staticcheck // upstream bbr's words
					}
					if c.Bool("with-manifest") {
						fmt.Fprintln(streams.Err, "Warning: --with-manifest saves the deployment manifest in the artifact; it contains the deployment's credentials, so store the artifact securely.")
					}
					return nil
				},
				Action: run(backupCleanupAdvice, func(c *cli.Context) allDeployments {
					return allDeployments{start: "Starting backup...", verb: "backup", failed: "cannot be backed up", succeeded: "backed up",
						logDir: logDir(c), advise: orchestrator.CleanupAdvised, listed: func(err error) { backups.reports.listed(ctx, s, c, err) }}
				}, func(c *cli.Context, o *orchestrator.Orchestrator, name string) error {
					return backupTo(ctx, s, c, backups, report.KindDeployment, o, orchestrator.BackupOptions{
						Deployment:     name,
						WithManifest:   c.Bool("with-manifest"),
						UnsafeLockFree: c.Bool("unsafe-lock-free"),
						SkipSpaceCheck: c.Bool("skip-space-check"),
					})
				}, checkDestination),
			},
			{
				Name:    "restore",
				Aliases: []string{"r"},
				Usage:   "Restore a deployment from backup",
				Flags: withRestoreFlags(
					restorePathFlag,
					cli.BoolFlag{Name: "serial-restore", Usage: "Run restore scripts one instance at a time, as upstream does (default: instances in parallel)"},
				),
				Before: func(c *cli.Context) error { return requireFlags(c, "artifact-path") },
				Action: run(restoreCleanupAdvice, nil, func(c *cli.Context, o *orchestrator.Orchestrator, name string) error {
					return restoreFrom(ctx, s, c, restores, report.KindDeployment, o, orchestrator.RestoreOptions{Deployment: name, Serial: c.Bool("serial-restore")})
				}, checkRestoreSource, checkReporting),
			},
			{
				Name:  "backup-cleanup",
				Usage: "Cleans up a previous backup: unlocks every job and removes staged artifacts from the instances",
				Flags: []cli.Flag{forceFlag},
				Action: run("", func(*cli.Context) allDeployments {
					return allDeployments{start: "Starting cleanup...", verb: "cleanup", failed: "could not be cleaned up", succeeded: "cleaned up", logDir: "."}
				}, func(c *cli.Context, o *orchestrator.Orchestrator, name string) error {
					return o.BackupCleanup(ctx, name, c.Bool("force"))
				}),
			},
			{
				Name:  "restore-cleanup",
				Usage: "Cleans up a previous restore: unlocks every job and removes staged artifacts from the instances",
				Flags: []cli.Flag{forceFlag},
				Action: run("", nil, func(c *cli.Context, o *orchestrator.Orchestrator, name string) error {
					return o.RestoreCleanup(ctx, name, c.Bool("force"))
				}),
			},
		},
	}
}

// checkArtifactParent refuses, before anything is contacted, a backup
// destination that is not an existing directory.
func checkArtifactParent(streams Streams, c *cli.Context) error {
	if info, err := os.Stat(artifactParent(c)); err != nil || !info.IsDir() {
		return exitError(streams, fmt.Errorf("artifact path %s is not a directory: create it, or pass an existing directory with --artifact-path", artifactParent(c)), "")
	}
	return nil
}

// artifactParent is --artifact-path, or the working directory as upstream.
func artifactParent(c *cli.Context) string {
	if p := c.String("artifact-path"); p != "" {
		return p
	}
	return "."
}

// logDir is where --all-deployments writes each deployment's log: beside
// the backups, or in the working directory when they go to a bucket.
func logDir(c *cli.Context) string {
	if bucket.IsURL(artifactParent(c)) {
		return "."
	}
	return artifactParent(c)
}

var (
	artifactPathFlag = cli.StringFlag{Name: "artifact-path, a",
		Usage: "Specify an optional path to save the backup artifacts to, or s3://bucket/prefix to stream them to a bucket (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...)"}
	restorePathFlag = cli.StringFlag{Name: "artifact-path, a",
		Usage: "Path to the artifact to restore, or s3://bucket/prefix/<deployment>_<timestamp> for one in a bucket"}
)

func deploymentFlags() []cli.Flag {
	return []cli.Flag{
		cli.StringFlag{Name: "target, t", EnvVar: "BOSH_ENVIRONMENT", Usage: "BOSH Director URL"},
		cli.StringFlag{Name: "username, u", EnvVar: "BOSH_CLIENT", Usage: "BOSH Director username"},
		cli.StringFlag{Name: "password, p", EnvVar: "BOSH_CLIENT_SECRET", Usage: "BOSH Director password"},
		cli.StringFlag{Name: "deployment, d", EnvVar: "BOSH_DEPLOYMENT", Usage: "Name of BOSH deployment"},
		cli.StringFlag{Name: "ca-cert", EnvVar: "CA_CERT,BOSH_CA_CERT", Usage: "Path or value of BOSH Director custom CA certificate"},
		cli.BoolFlag{Name: "all-deployments", Usage: "Run on all deployments (pre-backup-check, backup and backup-cleanup only)"},
		cli.BoolFlag{Name: "debug", Usage: "Enable debug logs"},
		scriptTimeoutFlag,
		progressIntervalFlag,
		parallelismFlag,
	}
}

// skipSpaceCheckFlag turns off the check, before locking, that the
// destination has the room the last backup there took.
var skipSpaceCheckFlag = cli.BoolFlag{Name: "skip-space-check", Usage: "Do not refuse a backup, before locking, when the artifact path has less free space than its last backup there took"}

// forceFlag lets a cleanup run while the staging directory's owner looks
// alive (its SSH user is logged in), or when that cannot be told.
var forceFlag = cli.BoolFlag{Name: "force", Usage: "Clean up even if the run that staged the backup still seems to be running (its SSH user is logged in), or that cannot be told"}

var parallelismFlag = cli.IntFlag{Name: "parallelism", Value: defaultParallelism, EnvVar: "BBR_PARALLELISM",
	Usage: "How many remote operations (scripts, copies, SSH set-up tasks) run at once (not tied to sshd's MaxStartups: one connection per instance)"}

// passwordInArgs says whether the secret was given as an argument, where
// every user of the machine can read it (ps, /proc/PID/cmdline).
func passwordInArgs(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "password" || name == "p") {
			return true
		}
	}
	return false
}

func validateDeploymentFlags(c *cli.Context) error {
	if helpAsked(c) {
		return nil
	}
	if err := requireFlags(c, "target", "username", "password"); err != nil {
		return err
	}
	if (c.String("deployment") == "") == !c.Bool("all-deployments") {
		_ = cli.ShowSubcommandHelp(c)
		return cli.NewExitError("provide one of '--deployment' or '--all-deployments' flags.", 1)
	}
	if d := c.String("deployment"); d != "" {
		if err := boshname.Check("deployment", d); err != nil {
			return cli.NewExitError(err.Error()+".", 1)
		}
	}
	return validateDurations(c)
}

var scriptTimeoutFlag = cli.DurationFlag{Name: "script-timeout", EnvVar: "BBR_SCRIPT_TIMEOUT",
	Usage: "Fail any bbr script (lock, backup, unlock, restore, metadata) running longer than this, e.g. 30m; jobs are still unlocked (default: no limit)"}

var progressIntervalFlag = cli.DurationFlag{Name: "progress-interval", EnvVar: "BBR_PROGRESS_INTERVAL", Value: orchestrator.DefaultProgressInterval,
	Usage: "While copying backups to or from the instances, log the bytes copied and the rate this often; 0 turns it off"}

// validateDurations checks the duration and parallelism flags both
// commands share.
func validateDurations(c *cli.Context) error {
	if p := c.Int("parallelism"); p < 1 || p > 1000 {
		return cli.NewExitError(fmt.Sprintf("--parallelism must be between 1 and 1000, got %d.", p), 1)
	}
	if t := c.Duration("script-timeout"); t != 0 && t < time.Second {
		return cli.NewExitError(fmt.Sprintf("--script-timeout must be at least 1s (or 0 for no limit), got %s.", t), 1)
	}
	if t := c.Duration("progress-interval"); t != 0 && t < time.Second {
		return cli.NewExitError(fmt.Sprintf("--progress-interval must be at least 1s (or 0 for none), got %s.", t), 1)
	}
	return nil
}

// requireFlags fails with upstream's message for the first missing flag.
func requireFlags(c *cli.Context, names ...string) error {
	if helpAsked(c) {
		return nil
	}
	for _, name := range names {
		if c.String(name) == "" {
			_ = cli.ShowSubcommandHelp(c)
			return cli.NewExitError(fmt.Sprintf("--%s flag is required.", name), 1)
		}
	}
	return nil
}

// helpAsked says whether the command line asks for help below c: a
// --help or -h among its arguments (before any --), or help (h) as the
// subcommand of a command that has subcommands. A parent command's
// checks (credentials, --deployment) must not refuse it: urfave/cli
// shows the help after them.
func helpAsked(c *cli.Context) bool {
	args := c.Args()
	if len(c.App.Commands) > 0 && c.Command.Name == "" && (args.First() == "help" || args.First() == "h") {
		return true
	}
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--help" || a == "-h" {
			return true
		}
	}
	return false
}

// newLogger is upstream's log format at the level --debug selects.
func newLogger(c *cli.Context, w io.Writer) boshlog.Logger {
	level := boshlog.LevelInfo
	if c.Bool("debug") {
		level = boshlog.LevelDebug
	}
	return boshlog.NewWriterLogger(level, w)
}

// newDirector connects to the Director the flags name. bosh-cli logs its
// HTTP traffic at debug level; it goes to logger only with --debug (it
// never logs credentials).
func newDirector(ctx context.Context, c *cli.Context, logger boshlog.Logger) (*director.Client, error) {
	caCert, err := readCACert(c.String("ca-cert"))
	if err != nil {
		return nil, err
	}
	if !c.Bool("debug") {
		logger = boshlog.NewWriterLogger(boshlog.LevelNone, io.Discard)
	}
	return director.New(ctx, director.Config{
		URL:          c.String("target"),
		Client:       c.String("username"),
		ClientSecret: c.String("password"),
		CACert:       caCert,
	}, logger)
}

func newDeploymentOrchestrator(c *cli.Context, s session, logger boshlog.Logger) (*orchestrator.Orchestrator, error) {
	dir, err := newDirector(s.ctx, c, logger)
	if err != nil {
		return nil, err
	}
	return s.orchestrator(directorFinder(dir), logger, flagSettings(c)), nil
}

// settings are the orchestrator's knobs a command's flags (or the errand's
// config) set.
type settings struct {
	parallelism      int
	scriptTimeout    time.Duration
	progressInterval time.Duration
}

func flagSettings(c *cli.Context) settings {
	return settings{c.Int("parallelism"), c.Duration("script-timeout"), c.Duration("progress-interval")}
}

// orchestrator is the workflows on what finder finds, the one place every
// command of this process (deployment, director, errand) builds them.
func (s session) orchestrator(finder orchestrator.Finder, logger boshlog.Logger, set settings) *orchestrator.Orchestrator {
	return &orchestrator.Orchestrator{
		Finder:           finder,
		Logger:           logger,
		Version:          s.version,
		Leftovers:        s.leftovers,
		Parallelism:      set.parallelism,
		Now:              time.Now,
		CleanupTimeout:   10 * time.Minute,
		ScriptTimeout:    set.scriptTimeout,
		ProgressInterval: set.progressInterval,
	}
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
