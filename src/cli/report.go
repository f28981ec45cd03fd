package cli

import (
	"context"
	"fmt"
	"os"
	"path"
	"sync"
	"time"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/report"
)

// reportFlags record how a backup or a restore went, for machines. The webhook's URL
// is a credential, so it comes only from the environment.
var reportFlags = []cli.Flag{
	cli.StringFlag{Name: "report", Usage: "Write a JSON report of the run to this file, rewritten as each deployment finishes"},
	cli.StringFlag{Name: "metrics-dir", EnvVar: "BBR_METRICS_DIR", Usage: "Update each deployment's Prometheus metrics in this directory (node_exporter's textfile collector format)"},
	cli.BoolFlag{Name: "notify-on-success", Usage: "Post successful backups (restores) to BBR_WEBHOOK_URL too (failures always are)"},
}

// webhookEnv names the Slack-compatible webhook failures are posted to.
const webhookEnv = "BBR_WEBHOOK_URL"

// checkReporting refuses, before anything is contacted, reporting that
// cannot work.
func checkReporting(streams Streams, c *cli.Context) error {
	if u := os.Getenv(webhookEnv); u != "" {
		if err := report.CheckWebhookURL(u); err != nil {
			return exitError(streams, fmt.Errorf("%s: %w", webhookEnv, err), "")
		}
		if (report.Webhook{URL: u}).Plaintext() {
			fmt.Fprintf(streams.Err, "Warning: %s is plain http: its secret crosses the network unencrypted; use https.\n", webhookEnv)
		}
	}
	return nil
}

// reporting is a command's report, metrics and webhook, shared by every
// deployment of the run (--all-deployments).
type reporting struct {
	once    sync.Once
	rec     *report.Recorder
	hook    report.Webhook
	started time.Time
}

func (r *reporting) get(c *cli.Context, version, op, command string) (*report.Recorder, report.Webhook) {
	r.once.Do(func() {
		r.started = time.Now()
		if c.String("report") != "" || c.String("metrics-dir") != "" {
			r.rec = report.NewRecorder(c.String("report"), c.String("metrics-dir"), op, command, version, r.started)
		}
		r.hook = report.Webhook{URL: os.Getenv(webhookEnv), OnSuccess: c.Bool("notify-on-success"), Attempts: report.DefaultWebhookAttempts}
	})
	return r.rec, r.hook
}

// record reports one deployment's backup: the report, the metrics and
// the webhook. What cannot be written is a warning: the backup is what
// it is either way.
func (r *reporting) record(ctx context.Context, s session, c *cli.Context, dest artifact.Destination, kind, name string, start time.Time, location string, err error, times map[string]time.Duration) {
	rec, hook := r.get(c, s.version, report.OpBackup, kind+" backup")
	if rec == nil && hook.URL == "" {
		return
	}
	d := report.Attempt(kind, name, start, time.Now(), err)
	if dest != nil {
		d.Destination = dest.String()
		if location != "" {
			d.Backup = location
			// A backup can be good while the run failed after it (an
			// unlock): only opening it says; a signal must not stop that.
			if src, openErr := dest.Open(context.WithoutCancel(ctx), path.Base(location)); openErr == nil {
				d.Describe(src)
				d.SetCopyTimes(times)
			}
		}
	}
	r.add(ctx, s, rec, hook, d)
}

// add records d in the report and the metrics, and posts it.
func (r *reporting) add(ctx context.Context, s session, rec *report.Recorder, hook report.Webhook, d report.Deployment) {
	if werr := rec.Add(d); werr != nil {
		fmt.Fprintf(s.streams.Err, "Warning: %v\n", werr)
	}
	if herr := hook.Notify(context.WithoutCancel(ctx), d); herr != nil {
		fmt.Fprintf(s.streams.Err, "Warning: %v\n", herr)
	}
}

// recordRestore reports one deployment's restore from src (nil when it
// could not be opened), as record does a backup.
func (r *reporting) recordRestore(ctx context.Context, s session, c *cli.Context, kind, name string, start time.Time, src artifact.Source, err error) {
	rec, hook := r.get(c, s.version, report.OpRestore, kind+" restore")
	if rec == nil && hook.URL == "" {
		return
	}
	d := report.RestoreAttempt(kind, name, start, time.Now(), err)
	if src != nil {
		d.RestoredFrom(src)
	}
	r.add(ctx, s, rec, hook, d)
}

// listed reports a run over every deployment that stopped before any
// (err: no Director, no deployments) as failed, in the report, the
// metrics (kind run, deployment all-deployments) and the webhook; or,
// err nil, that it got through to them.
func (r *reporting) listed(ctx context.Context, s session, c *cli.Context, err error) {
	rec, hook := r.get(c, s.version, report.OpBackup, report.KindDeployment+" backup")
	if err == nil {
		if werr := rec.Reached(); werr != nil {
			fmt.Fprintf(s.streams.Err, "Warning: %v\n", werr)
		}
		return
	}
	now := time.Now()
	d := report.Attempt(report.KindRun, report.AllDeployments, r.started, now, err)
	if werr := rec.Fail(err, now, d); werr != nil {
		fmt.Fprintf(s.streams.Err, "Warning: %v\n", werr)
	}
	if herr := hook.Notify(context.WithoutCancel(ctx), d); herr != nil {
		fmt.Fprintf(s.streams.Err, "Warning: %v\n", herr)
	}
}
