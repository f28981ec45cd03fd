package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/bucket"
	"github.com/bbr-release/bbr/src/orchestrator"
	"github.com/bbr-release/bbr/src/report"
	"github.com/bbr-release/bbr/src/transform"
)

// bucketFlags set what the AWS CLI's environment variables do not say for
// an s3:// --artifact-path. Credentials come only from the environment
// (or the AWS credential chain), never from flags: argv is public.
var bucketFlags = []cli.Flag{
	cli.StringFlag{Name: "s3-addressing", EnvVar: "BBR_S3_ADDRESSING", Value: "auto",
		Usage: "How to address the bucket: auto, path (https://endpoint/bucket, for most S3-compatible servers) or virtual (https://bucket.endpoint)"},
	cli.StringFlag{Name: "s3-sse", EnvVar: "BBR_S3_SSE", Usage: "Server-side encryption of the objects: AES256 (SSE-S3) or aws:kms (SSE-KMS); default: the bucket's"},
	cli.StringFlag{Name: "s3-sse-kms-key-id", EnvVar: "BBR_S3_SSE_KMS_KEY_ID", Usage: "The KMS key for --s3-sse aws:kms (default: the account's S3 key)"},
	cli.IntFlag{Name: "s3-part-size-mib", EnvVar: "BBR_S3_PART_SIZE_MIB", Value: bucket.DefaultPartSize >> 20,
		Usage: "Multipart upload part size in MiB (5 to 5120); a tar can be at most 10,000 parts"},
	cli.IntFlag{Name: "s3-upload-concurrency", EnvVar: "BBR_S3_UPLOAD_CONCURRENCY", Value: bucket.DefaultConcurrency,
		Usage: "Parts uploaded at once, across all jobs: memory used is part size x this"},
	cli.DurationFlag{Name: "s3-stall-timeout", EnvVar: "BBR_S3_STALL_TIMEOUT", Value: bucket.DefaultStallTimeout,
		Usage: "Fail (and retry where it is safe) a read or write on the bucket that moves no byte for this long, e.g. 60s"},
}

// retentionFlags prune the deployment's backups at the destination after
// a good backup.
var retentionFlags = []cli.Flag{
	cli.IntFlag{Name: "keep-last", Usage: "After a good backup, keep only the newest N good backups of the deployment at the destination (with --max-age: those either keeps)"},
	cli.DurationFlag{Name: "max-age", Usage: "After a good backup, remove good backups of the deployment older than this, e.g. 720h (the newest good backup is always kept)"},
	cli.DurationFlag{Name: "in-progress-grace", Value: artifact.DefaultInProgressGrace,
		Usage: "Retention leaves a backup in progress younger than this alone: it may be another run's, still being written"},
}

// withBackupFlags adds the flags of every backup subcommand: the
// bucket's, retention and the transforms.
func withBackupFlags(flags ...cli.Flag) []cli.Flag {
	return append(append(append(append(flags, bucketFlags...), retentionFlags...), encodeFlags...), reportFlags...)
}

// withRestoreFlags adds the flags of every restore subcommand: the
// bucket's, the identity and the report's.
func withRestoreFlags(flags ...cli.Flag) []cli.Flag {
	return append(append(append(flags, bucketFlags...), identityFlag), reportFlags...)
}

// bucketConfig is the AWS environment's configuration for location, with
// the flags on top.
func bucketConfig(c *cli.Context, location string) (bucket.Config, error) {
	cfg, err := bucket.FromEnv(location, os.Getenv)
	if err != nil {
		return cfg, err
	}
	cfg.Addressing = c.String("s3-addressing")
	cfg.SSE = c.String("s3-sse")
	cfg.KMSKeyID = c.String("s3-sse-kms-key-id")
	cfg.PartSize = int64(c.Int("s3-part-size-mib")) << 20
	cfg.Concurrency = c.Int("s3-upload-concurrency")
	cfg.StallTimeout = c.Duration("s3-stall-timeout")
	return cfg, cfg.Validate()
}

// checkDestination refuses, before anything is contacted, a backup
// destination that cannot work: a directory that does not exist, a bucket
// location or settings that are wrong, a retention that makes no sense.
func checkDestination(streams Streams, c *cli.Context) error {
	if c.Int("keep-last") < 0 || c.Duration("max-age") < 0 || c.Duration("in-progress-grace") <= 0 {
		return exitError(streams, fmt.Errorf("--keep-last and --max-age must not be negative, and --in-progress-grace must be positive"), "")
	}
	if _, err := encodeOptions(c); err != nil {
		return exitError(streams, err, "")
	}
	if err := checkReporting(streams, c); err != nil {
		return err
	}
	if loc := artifactParent(c); bucket.IsURL(loc) {
		cfg, err := bucketConfig(c, loc)
		if err != nil {
			return exitError(streams, err, "")
		}
		warnPlaintext(streams, cfg)
		return nil
	}
	return checkArtifactParent(streams, c)
}

func warnPlaintext(streams Streams, cfg bucket.Config) {
	if cfg.Plaintext() {
		fmt.Fprintf(streams.Err, "Warning: the S3 endpoint %s is plain http: backups cross the network unencrypted (and a --with-manifest manifest holds credentials); use https.\n", cfg.Endpoint)
	}
}

// backupRun is what a backup command's deployments share.
type backupRun struct {
	dests   destinations
	reports reporting
}

// destinations gives the one destination --artifact-path names, made on
// first use and shared by every deployment of the command: a bucket's
// part pool bounds the memory of all of them (--all-deployments backs up
// ten at once).
type destinations struct {
	once sync.Once
	dest artifact.Destination
	err  error
}

// get is --artifact-path as a destination: a bucket when it is
// s3://bucket/prefix, else a local directory.
func (ds *destinations) get(ctx context.Context, c *cli.Context) (artifact.Destination, error) {
	ds.once.Do(func() {
		o, err := encodeOptions(c)
		if err != nil {
			ds.err = err
			return
		}
		ds.dest, ds.err = destination(ctx, c, artifactParent(c))
		if ds.err == nil && o.Writes() {
			ds.dest = transform.Wrap(ds.dest, o)
		}
	})
	return ds.dest, ds.err
}

// destination is loc as a destination: a bucket when it is
// s3://bucket/prefix, else a local directory.
func destination(ctx context.Context, c *cli.Context, loc string) (artifact.Destination, error) {
	if !bucket.IsURL(loc) {
		return artifact.Local{Dir: loc}, nil
	}
	cfg, err := bucketConfig(c, loc)
	if err != nil {
		return nil, err
	}
	return bucket.New(ctx, cfg)
}

// backupTo backs up name to --artifact-path, reports how it went, then
// applies the retention flags when the backup is good.
func backupTo(ctx context.Context, s session, c *cli.Context, run *backupRun, kind string, o *orchestrator.Orchestrator, opts orchestrator.BackupOptions) error {
	start := time.Now()
	dest, err := run.dests.get(ctx, c)
	if err != nil {
		run.reports.record(ctx, s, c, nil, kind, opts.Deployment, start, "", err, nil)
		return err
	}
	opts.Destination = dest
	times := &report.CopyTimes{}
	o.JobCopied = times.Record
	location, err := o.Backup(ctx, opts)
	run.reports.record(ctx, s, c, dest, kind, opts.Deployment, start, location, err, times.Take())
	if err != nil {
		return err
	}
	r := artifact.Retention{KeepLast: c.Int("keep-last"), MaxAge: c.Duration("max-age")}
	if r == (artifact.Retention{}) {
		return nil
	}
	r.InProgressGrace = c.Duration("in-progress-grace")
	pruned, err := artifact.Prune(ctx, dest, opts.Deployment, r, time.Now())
	for _, name := range pruned.Removed {
		o.Logger.Info("bbr", "Retention: removed %s from %s", name, dest)
	}
	for _, kept := range pruned.Kept {
		o.Logger.Info("bbr", "Retention: %v", kept)
	}
	if err != nil {
		return fmt.Errorf("the backup is good, but retention failed: %w", err)
	}
	return nil
}

// checkRestoreSource refuses, before anything is contacted, an artifact
// that cannot be restored: a local one missing, not a backup, failed or
// incomplete; a bucket location that is not s3://bucket/prefix/<backup>.
// A bucket's backup is opened in the restore itself.
func checkRestoreSource(streams Streams, c *cli.Context) error {
	loc := c.String("artifact-path")
	if bucket.IsURL(loc) {
		cfg, _, err := splitBucketBackup(c, loc)
		if err != nil {
			return exitError(streams, err, "")
		}
		warnPlaintext(streams, cfg)
		return nil
	}
	src, err := artifact.Open(loc)
	if err == nil {
		_, err = decoded(context.Background(), c, src)
	}
	if err != nil {
		return exitError(streams, err, "")
	}
	return nil
}

// splitBucketBackup splits s3://bucket/prefix/<backup> into the
// destination's config and the backup's name.
func splitBucketBackup(c *cli.Context, loc string) (bucket.Config, string, error) {
	trimmed := strings.TrimRight(loc, "/")
	parent, name, _ := cutLast(trimmed, "/")
	if err := artifact.CheckBackupName(name); err != nil || !bucket.IsURL(parent) || parent == bucket.Scheme {
		return bucket.Config{}, "", fmt.Errorf("%s does not name a backup: give s3://bucket/prefix/<deployment>_<timestamp>", loc)
	}
	cfg, err := bucketConfig(c, parent)
	return cfg, name, err
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return "", s, false
}

// restoreSource opens --artifact-path to read its plain files, checking
// first that --identity-file decrypts it if it is encrypted.
func restoreSource(ctx context.Context, c *cli.Context) (artifact.Source, error) {
	src, err := storedSource(ctx, c)
	if err != nil {
		return nil, err
	}
	return decoded(ctx, c, src)
}

// storedSource opens --artifact-path as it is stored: a local backup
// directory, or a backup in a bucket.
func storedSource(ctx context.Context, c *cli.Context) (artifact.Source, error) {
	loc := c.String("artifact-path")
	if !bucket.IsURL(loc) {
		return artifact.Open(loc)
	}
	cfg, name, err := splitBucketBackup(c, loc)
	if err != nil {
		return nil, err
	}
	dest, err := bucket.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return dest.Open(ctx, name)
}

// restoreFrom restores name from --artifact-path and reports how it
// went.
func restoreFrom(ctx context.Context, s session, c *cli.Context, reps *reporting, kind string, o *orchestrator.Orchestrator, opts orchestrator.RestoreOptions) error {
	start := time.Now()
	src, err := restoreSource(ctx, c)
	if err == nil {
		opts.Source = src
		err = o.Restore(ctx, opts)
	}
	reps.recordRestore(ctx, s, c, kind, opts.Deployment, start, src, err)
	return err
}
