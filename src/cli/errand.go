package cli

import (
	"context"
	"fmt"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/bucket"
	"github.com/bbr-release/bbr/src/director"
	"github.com/bbr-release/bbr/src/errand"
	"github.com/bbr-release/bbr/src/orchestrator"
	"github.com/bbr-release/bbr/src/report"
	"github.com/bbr-release/bbr/src/schedule"
)

// errandCommand is what the release's errand jobs run: `bbr errand backup
// --config FILE` and `bbr errand restore --config FILE`. Credentials come
// from the config file, never from arguments. bbr neither checks nor sets
// that file's mode: the BOSH agent installs rendered job files as
// root:vcap 0640.
func errandCommand(s session) cli.Command {
	sub := func(name, usage string, check func(errand.Config) error, run func(errand.Runner, context.Context) error) cli.Command {
		return cli.Command{
			Name:  name,
			Usage: usage,
			Flags: []cli.Flag{cli.StringFlag{Name: "config", Usage: "the errand config file the job template rendered"}},
			Before: func(c *cli.Context) error {
				return requireFlags(c, "config")
			},
			Action: func(c *cli.Context) error {
				r, err := newErrandRunner(s, c.String("config"), check)
				if err == nil {
					err = run(r, s.ctx)
				}
				if err != nil {
					return exitError(s.streams, err, "")
				}
				return nil
			},
		}
	}
	return cli.Command{
		Name:   "errand",
		Usage:  "Run the BOSH release's backup or restore errand (used by the jobs' bin/run)",
		Hidden: true,
		Subcommands: []cli.Command{
			sub("backup", "Back up the configured deployments, then apply retention", errand.Config.CheckBackup, errand.Runner.RunBackup),
			sub("restore", "Restore the configured deployment from its newest (or the named) backup", errand.Config.CheckRestore, errand.Runner.RunRestore),
			{
				Name:   "schedule",
				Usage:  "Run the backup errand's config on a schedule until stopped (the scheduler job)",
				Flags:  []cli.Flag{cli.StringFlag{Name: "config", Usage: "the scheduler config file the job template rendered"}},
				Before: func(c *cli.Context) error { return requireFlags(c, "config") },
				Action: func(c *cli.Context) error {
					if err := runScheduler(s, c.String("config")); err != nil {
						return exitError(s.streams, err, "")
					}
					return nil
				},
			},
		},
	}
}

// newErrandRunner reads and checks the config, with check saying what the
// errand needs, before director.New contacts the Director: a config that
// cannot run fails without a request. A Director that does not answer
// gives a runner whose run fails, so that it is reported.
func newErrandRunner(s session, path string, check func(errand.Config) error) (errand.Runner, error) {
	cfg, err := errand.LoadConfig(path)
	if err != nil {
		return errand.Runner{}, err
	}
	if err := check(cfg); err != nil {
		return errand.Runner{}, err
	}
	if cfg.Mode == "validate" { // reads backups only: no Director
		return errand.Runner{Config: cfg, Bucket: errandBucket(cfg), Out: s.streams.Out, Now: time.Now}, nil
	}
	logger := boshlog.NewWriterLogger(boshlog.LevelInfo, s.streams.Out)
	id, secret := cfg.Director.Credentials()
	dir, err := director.New(s.ctx, director.Config{
		URL:          cfg.Director.URL,
		Client:       id,
		ClientSecret: secret,
		CACert:       cfg.Director.CACert,
	}, boshlog.NewWriterLogger(boshlog.LevelNone, s.streams.Out))
	if err != nil {
		// A run all the same, which fails: the config says where its
		// report, metrics and webhook go.
		return errand.Runner{Config: cfg, Out: s.streams.Out, Now: time.Now, Version: s.version, SetupError: err}, nil
	}
	set := settings{cfg.Parallelism, cfg.ScriptTimeoutDuration(), orchestrator.DefaultProgressInterval}
	o := s.orchestrator(directorFinder(dir), logger, set)
	times := &report.CopyTimes{}
	o.JobCopied = times.Record
	backupDirector, err := errandDirectorBackup(s, cfg, logger, set, times)
	if err != nil {
		return errand.Runner{}, err
	}
	return errand.Runner{
		Config: cfg,
		Backup: func(ctx context.Context, deployment string, dest artifact.Destination) (string, error) {
			return o.Backup(ctx, orchestrator.BackupOptions{Deployment: deployment, Destination: dest,
				WithManifest: cfg.WithManifest, UnsafeLockFree: cfg.UnsafeLockFree})
		},
		BackupDirector: backupDirector,
		Restore: func(ctx context.Context, deployment string, src artifact.Source) error {
			return o.Restore(ctx, orchestrator.RestoreOptions{Deployment: deployment, Source: src})
		},
		Bucket:      errandBucket(cfg),
		Deployments: dir.Deployments,
		Out:         s.streams.Out,
		Now:         time.Now,
		Version:     s.version,
		CopyTimes:   times,
	}, nil
}

// errandDirectorBackup backs up bosh_director's VM as `bbr director
// backup` does, with its host keys pinned; nil when none is configured.
func errandDirectorBackup(s session, cfg errand.Config, logger boshlog.Logger, set settings, times *report.CopyTimes) (func(context.Context, artifact.Destination) (string, error), error) {
	if cfg.BoshDirector.Host == "" {
		return nil, nil
	}
	ssh, err := cfg.BoshDirector.SSH()
	if err != nil {
		return nil, err
	}
	name := cfg.BoshDirector.Name()
	o := s.standalone(logger, set, name, ssh)
	o.JobCopied = times.Record
	return func(ctx context.Context, dest artifact.Destination) (string, error) {
		return o.Backup(ctx, orchestrator.BackupOptions{Deployment: name, Destination: dest})
	}, nil
}

// errandBucket connects to the config's bucket; nil when it has none.
func errandBucket(cfg errand.Config) func(context.Context) (artifact.Destination, error) {
	if cfg.S3 == nil {
		return nil
	}
	return func(ctx context.Context) (artifact.Destination, error) {
		return bucket.New(ctx, cfg.S3.Config())
	}
}

// runScheduler runs the backup errand's config on the scheduler's
// schedule until the session ends (monit stop's SIGTERM). A config that
// cannot run fails at start, so monit shows the job failing; each run
// then reads it anew, as a `bosh run-errand backup` would.
func runScheduler(s session, path string) error {
	cfg, err := schedule.LoadConfig(path)
	if err != nil {
		return err
	}
	backup, err := errand.LoadConfig(cfg.BackupConfig)
	if err != nil {
		return fmt.Errorf("the backup job's config %s: %w", cfg.BackupConfig, err)
	}
	if err := backup.CheckBackup(); err != nil {
		return fmt.Errorf("the backup job's config %s: %w", cfg.BackupConfig, err)
	}
	sched, loc, err := cfg.Parse()
	if err != nil {
		return err
	}
	timeout, err := cfg.Timeout()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("the backup job's config %s, on %q in %s", cfg.BackupConfig, cfg.Schedule, loc)
	if timeout > 0 {
		what += fmt.Sprintf(", each run stopped after %s (run_timeout)", timeout)
	}
	sc := schedule.Scheduler{
		What:     what,
		Schedule: sched,
		Location: loc,
		Run: func(ctx context.Context) error {
			r, err := newErrandRunner(s, cfg.BackupConfig, errand.Config.CheckBackup)
			if err != nil {
				return err
			}
			return r.RunBackup(ctx)
		},
		RunTimeout: timeout,
		LastStart:  func() (time.Time, bool) { return errand.LastStart(backup.ArtifactDirectory) },
		Missed:     errand.MissedRuns(backup, s.streams.Out),
		TimedOut:   errand.TimedOutRun(backup, s.streams.Out),
		Clock:      schedule.WallClock{},
		Out:        s.streams.Out,
	}
	return sc.Loop(s.ctx)
}
