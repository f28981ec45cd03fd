package errand

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/report"
)

// ReportsDir is where the backup errand keeps its runs' JSON reports,
// under artifact_directory: the leading dot keeps it from ever being
// taken for a deployment's folder (no BOSH name starts with one).
const ReportsDir = ".reports"

// LastRun is the newest backup run's report's copy, for whoever reads
// just one (the scheduler reads when the last run started); LastRestore
// the newest restore's.
const (
	LastRun     = "last-run.json"
	LastRestore = "last-restore.json"
)

// keepReports bounds the reports kept: a daily backup's last months.
const keepReports = 100

// runReport records the errand's run, a backup or a restore (op): a
// JSON report per run (rewritten as each deployment finishes), the
// Prometheus textfile of each deployment, and the webhook.
type runReport struct {
	r    Runner
	op   string
	rec  *report.Recorder
	hook report.Webhook
	dir  string
}

func (r Runner) newReport(op string) *runReport {
	now := r.Now()
	dir := filepath.Join(r.Config.ArtifactDirectory, ReportsDir)
	rr := &runReport{r: r, op: op, dir: dir, hook: r.Config.webhook()}
	if rr.hook.Plaintext() {
		fmt.Fprintf(r.Out, "[%s] Warning: webhook.url is plain http: its secret crosses the network unencrypted; use https\n", r.now())
	}
	// 0700, as artifact_directory: the reports quote the last lines of
	// failed scripts' output. Earlier releases made it 0755 and its
	// reports 0644, with whole outputs in them: tightened here.
	if err := privateReports(dir); err != nil {
		fmt.Fprintf(r.Out, "[%s] Warning: no run report: %v\n", r.now(), err)
		dir = ""
	}
	path := ""
	if dir != "" {
		path = filepath.Join(dir, op+"-"+now.UTC().Format("20060102T150405Z")+".json")
	}
	rr.rec = report.NewRecorder(path, r.Config.MetricsDirectory, op, "errand "+op, r.Version, now)
	return rr
}

// add records one deployment's result.
func (rr *runReport) add(ctx context.Context, res result, start, end time.Time) {
	d := report.Attempt(res.kind, res.deployment, start, end, res.err)
	var times map[string]time.Duration
	if rr.r.CopyTimes != nil {
		times = rr.r.CopyTimes.Take() // this deployment's, whatever became of it
	}
	if res.src != nil { // good, even if the run failed after it
		d.Describe(res.src)
		d.SetCopyTimes(times)
	}
	d.Backup = strings.Join(nonEmpty(res.path, res.copied), " and ")
	rr.record(ctx, d)
}

// record adds d to the report and the metrics, and posts it.
func (rr *runReport) record(ctx context.Context, d report.Deployment) {
	if err := rr.rec.Add(d); err != nil {
		fmt.Fprintf(rr.r.Out, "[%s] Warning: %v\n", rr.r.now(), err)
	}
	if ctx.Err() != nil {
		return // stopped: the summary says what was not done, and no post delays the exit
	}
	rr.notify(ctx, d)
}

func (rr *runReport) notify(ctx context.Context, d report.Deployment) {
	if err := rr.hook.Notify(ctx, d); err != nil {
		fmt.Fprintf(rr.r.Out, "[%s] Warning: %v\n", rr.r.now(), err)
	}
}

// fail records an error that stopped the run before any deployment (no
// Director, no bucket, no list of deployments): in the report, in the
// metrics of each of stopped, and on the webhook.
func (rr *runReport) fail(ctx context.Context, err error, stopped []report.Deployment) {
	now := rr.r.Now()
	for i := range stopped {
		stopped[i] = report.Attempt(stopped[i].Kind, stopped[i].Name, rr.rec.Run().Started, now, err)
	}
	if werr := rr.rec.Fail(err, now, stopped...); werr != nil {
		fmt.Fprintf(rr.r.Out, "[%s] Warning: %v\n", rr.r.now(), werr)
	}
	rr.notify(ctx, report.Attempt(report.KindRun, "the backup errand's run", now, now, err))
	rr.finish()
}

// reached records that the run got through to its targets.
func (rr *runReport) reached() {
	if err := rr.rec.Reached(); err != nil {
		fmt.Fprintf(rr.r.Out, "[%s] Warning: %v\n", rr.r.now(), err)
	}
}

// unreached are the targets a run that stopped before any deployment
// did not back up: the deployments it knows of (listed: configured, or
// the Director's list) and the Director VM; and, with all_deployments
// and no list, the run itself (report.AllDeployments), so that a
// failure is counted even when no deployment is known.
func (r Runner) unreached(deployments []string, listed bool) []report.Deployment {
	var out []report.Deployment
	if listed {
		for _, d := range deployments {
			if boshname.Valid(d) {
				out = append(out, report.Deployment{Kind: report.KindDeployment, Name: d})
			}
		}
	}
	if r.Config.AllDeployments && len(out) == 0 {
		out = append(out, report.Deployment{Kind: report.KindRun, Name: report.AllDeployments})
	}
	if r.Config.BoshDirector.Host != "" {
		out = append(out, report.Deployment{Kind: report.KindDirector, Name: r.Config.BoshDirector.Name()})
	}
	return out
}

// finish copies the run's report to last-run.json (a restore's to
// last-restore.json) and removes the oldest reports of its kind beyond
// keepReports.
func (rr *runReport) finish() {
	if rr.dir == "" {
		return
	}
	last := filepath.Join(rr.dir, LastRun)
	if rr.op == report.OpRestore {
		last = filepath.Join(rr.dir, LastRestore)
	}
	if err := report.WriteJSON(last, rr.rec.Run()); err != nil {
		fmt.Fprintf(rr.r.Out, "[%s] Warning: %v\n", rr.r.now(), err)
	}
	old, _ := filepath.Glob(filepath.Join(rr.dir, rr.op+"-*.json"))
	slices.Sort(old)
	for len(old) > keepReports {
		_ = os.Remove(old[0])
		old = old[1:]
	}
	fmt.Fprintf(rr.r.Out, "[%s] Report: %s\n", rr.r.now(), last)
}

// webhook is the configured webhook (no URL: none).
func (c Config) webhook() report.Webhook {
	return report.Webhook{URL: c.Webhook.URL, OnSuccess: c.Webhook.OnSuccess, Attempts: report.DefaultWebhookAttempts}
}

// LastStart is when the newest run recorded under artifactDirectory
// started, when its report can be read.
func LastStart(artifactDirectory string) (time.Time, bool) {
	raw, err := os.ReadFile(filepath.Join(artifactDirectory, ReportsDir, LastRun))
	if err != nil {
		return time.Time{}, false
	}
	var run report.Run
	if json.Unmarshal(raw, &run) != nil || run.Started.IsZero() {
		return time.Time{}, false
	}
	return run.Started, true
}

// MissedRuns tells the webhook (the scheduler's) of scheduled runs that
// did not start, as a failed run: a backup that did not happen is one
// the operator must hear of. Warnings go to out.
func MissedRuns(cfg Config, out io.Writer) func(ctx context.Context, first time.Time, count int, why string) {
	hook := cfg.webhook()
	return func(ctx context.Context, first time.Time, count int, why string) {
		err := fmt.Errorf("%d scheduled run(s) from %s did not start: %s", count, first.UTC().Format(time.RFC3339), why)
		if herr := hook.Notify(ctx, report.Attempt(report.KindRun, "the scheduled backup", first, first, err)); herr != nil {
			fmt.Fprintf(out, "Warning: %v\n", herr)
		}
	}
}

// TimedOutRun tells the webhook (the scheduler's) of a scheduled run its
// run_timeout stopped: a stopped run posts nothing of its own, so that
// monit stop is quick. Warnings go to out.
func TimedOutRun(cfg Config, out io.Writer) func(ctx context.Context, started, ended time.Time, err error) {
	hook := cfg.webhook()
	return func(ctx context.Context, started, ended time.Time, err error) {
		if herr := hook.Notify(ctx, report.Attempt(report.KindRun, "the scheduled backup", started, ended, err)); herr != nil {
			fmt.Fprintf(out, "Warning: %v\n", herr)
		}
	}
}

// withStopCause adds why ctx was stopped to err, when the stop has a
// cause of its own (the scheduler's run_timeout): "context canceled"
// alone does not tell the operator who stopped the run.
func withStopCause(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if err == nil || ctx.Err() == nil || errors.Is(cause, ctx.Err()) || errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// privateReports makes dir (0700) or tightens it and the reports in it
// (0600) that an earlier release left readable.
func privateReports(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Chmod(f, 0o600); err != nil {
			return err
		}
	}
	return nil
}
