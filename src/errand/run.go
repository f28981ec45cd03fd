package errand

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/boshname"
)

// Runner runs the errands. Its functions are the seams to bbr's
// orchestrator and the Director, so the errand logic is tested with fakes.
type Runner struct {
	Config Config
	// Backup backs up one deployment into parent and returns the
	// artifact's path (also on failure, when one was started).
	Backup func(ctx context.Context, deployment, parent string) (string, error)
	// Restore restores one deployment from an artifact.
	Restore func(ctx context.Context, deployment, artifactPath string) error
	// Deployments lists the Director's deployments (all_deployments).
	Deployments func(ctx context.Context) ([]string, error)
	Out         io.Writer
	Now         func() time.Time
}

// result is one deployment's line in the summary.
type result struct {
	deployment string
	err        error
	path       string
	size       int64
	took       time.Duration
	lockWindow time.Duration
}

// RunBackup backs up every configured deployment, one after another,
// prunes each one's old backups after a success, prints a summary and
// fails when any deployment failed.
func (r Runner) RunBackup(ctx context.Context) error {
	if err := r.Config.CheckBackup(); err != nil {
		return err
	}
	deployments := r.Config.Deployments
	if r.Config.AllDeployments {
		var err error
		if deployments, err = r.Deployments(ctx); err != nil {
			return fmt.Errorf("listing the Director's deployments: %w", err)
		}
		if len(deployments) == 0 {
			return errors.New("the Director has no deployments to back up")
		}
	}
	store := Store{Root: r.Config.ArtifactDirectory}
	var results []result
	for _, d := range deployments {
		if ctx.Err() != nil {
			results = append(results, result{deployment: d, err: errors.New("not started: the errand was stopped")})
			continue
		}
		results = append(results, r.backupOne(ctx, store, d))
	}
	r.summarise(results)
	var failed []string
	for _, res := range results {
		if res.err != nil {
			failed = append(failed, res.deployment)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d deployments failed: %s", len(failed), len(results), strings.Join(failed, ", "))
	}
	return nil
}

func (r Runner) backupOne(ctx context.Context, store Store, deployment string) result {
	if !boshname.Valid(deployment) {
		// Only the Director's list (all_deployments) can get here: the
		// config's names are checked when it is read. Such a name would
		// be a path outside artifact_directory, so it is never used as
		// one, and it is quoted wherever it is printed.
		return result{deployment: strconv.Quote(deployment), err: errors.New("not backed up: the Director lists it, " +
			"but it is not a BOSH deployment name (letters, digits, '_', '+', '.', '-', not starting with '.' or '-'), so it cannot name a folder under artifact_directory")}
	}
	res := result{deployment: deployment}
	fmt.Fprintf(r.Out, "[%s] Backing up %s\n", r.Now().UTC().Format(time.TimeOnly), deployment)
	dir, err := store.Dir(deployment)
	if err != nil {
		res.err = err
		return res
	}
	start := r.Now()
	res.path, res.err = r.Backup(ctx, deployment, dir)
	res.took = r.Now().Sub(start)
	if res.err != nil {
		return res
	}
	res.size, res.lockWindow = describe(res.path)
	pruned, err := store.Prune(deployment, r.Config.KeepLast)
	now := r.Now().UTC().Format(time.TimeOnly)
	for _, p := range pruned.Removed {
		fmt.Fprintf(r.Out, "[%s] Retention: removed %s\n", now, p)
	}
	for _, k := range append(pruned.Kept, err) {
		if k != nil {
			fmt.Fprintf(r.Out, "[%s] Retention: %v\n", now, k)
		}
	}
	return res
}

// describe reads a good artifact's size and recorded lock window.
func describe(path string) (int64, time.Duration) {
	size, _ := artifact.DirSize(path)
	var window time.Duration
	if a, err := artifact.Open(path); err == nil {
		act := a.Metadata().BackupActivity
		from, err1 := time.Parse(artifact.LockTimeFormat, act.LockStartTime)
		to, err2 := time.Parse(artifact.LockTimeFormat, act.UnlockFinishTime)
		if err1 == nil && err2 == nil {
			window = to.Sub(from)
		}
	}
	return size, window
}

func (r Runner) summarise(results []result) {
	fmt.Fprintln(r.Out, "\nSummary:")
	w := tabwriter.NewWriter(r.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "deployment\tresult\tsize\tduration\tlock window\tartifact")
	for _, res := range results {
		if res.err != nil {
			fmt.Fprintf(w, "%s\tFAILED\t-\t%s\t-\t%s\n", res.deployment, res.took.Round(time.Millisecond), firstLine(res.err))
			continue
		}
		fmt.Fprintf(w, "%s\tok\t%s\t%s\t%s\t%s\n", res.deployment, artifact.HumanSize(res.size), res.took.Round(time.Millisecond),
			res.lockWindow.Round(time.Second/1000), res.path)
	}
	_ = w.Flush()
	// What failed, in full, and what became of its artifact.
	for _, res := range results {
		if res.err == nil {
			continue
		}
		fmt.Fprintf(r.Out, "\n%s failed:\n%s\n", res.deployment, strings.TrimSpace(res.err.Error()))
		if res.path == "" {
			continue
		}
		if _, err := artifact.Open(res.path); err == nil {
			fmt.Fprintf(r.Out, "Its backup is complete and kept: %s\n", res.path)
		} else {
			fmt.Fprintf(r.Out, "Its artifact is incomplete (never restored, never counted toward keep_last): %s\n", res.path)
		}
	}
}

// RunRestore restores the configured deployment from its newest good
// backup, or from the named one.
func (r Runner) RunRestore(ctx context.Context) error {
	if err := r.Config.CheckRestore(); err != nil {
		return err
	}
	d := r.Config.Restore.Deployment
	store := Store{Root: r.Config.ArtifactDirectory}
	var path string
	var err error
	if r.Config.Restore.Artifact == "" {
		path, err = store.Newest(d)
	} else {
		path, err = store.Named(d, r.Config.Restore.Artifact)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "[%s] Restoring %s from %s\n", r.Now().UTC().Format(time.TimeOnly), d, path)
	start := r.Now()
	if err := r.Restore(ctx, d, path); err != nil {
		return fmt.Errorf("restoring %s from %s: %w", d, path, err)
	}
	fmt.Fprintf(r.Out, "[%s] Restored %s from %s in %s\n", r.Now().UTC().Format(time.TimeOnly), d, path, r.Now().Sub(start).Round(time.Millisecond))
	return nil
}

func firstLine(err error) string {
	line, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	return line
}
