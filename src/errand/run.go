package errand

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/report"
	"github.com/bbr-release/bbr/src/transform"
)

// Runner runs the errands. Its functions are the seams to bbr's
// orchestrator and the Director, so the errand logic is tested with fakes.
type Runner struct {
	Config Config
	// Backup backs up one deployment to dest and returns the backup's
	// location (also on failure, when one was started).
	Backup func(ctx context.Context, deployment string, dest artifact.Destination) (string, error)
	// BackupDirector backs up the BOSH Director VM (bosh_director) to
	// dest, as Backup does a deployment.
	BackupDirector func(ctx context.Context, dest artifact.Destination) (string, error)
	// Restore restores one deployment from a backup.
	Restore func(ctx context.Context, deployment string, src artifact.Source) error
	// Bucket connects to the configured bucket; nil when there is none.
	Bucket func(ctx context.Context) (artifact.Destination, error)
	// Deployments lists the Director's deployments (all_deployments).
	Deployments func(ctx context.Context) ([]string, error)
	Out         io.Writer
	Now         func() time.Time
	// Version is bbr's, for the run's report; CopyTimes, when set, what
	// the orchestrator told of each file's copy time.
	Version   string
	CopyTimes *report.CopyTimes
	// SetupError is why the runner could not be made (the Director did
	// not answer): the run fails with it, recorded as any failure before
	// the first deployment is.
	SetupError error

	transform transform.Options // from Config, once it is checked
}

// target is what one backup is of: a deployment, or the Director VM.
type target struct {
	name   string // the deployment's, or the Director's host name
	kind   string // report.KindDeployment or report.KindDirector
	backup func(ctx context.Context, dest artifact.Destination) (string, error)
}

// targets are the deployments, then the Director when one is configured.
func (r Runner) targets(deployments []string) []target {
	var ts []target
	for _, d := range deployments {
		ts = append(ts, target{name: d, kind: report.KindDeployment, backup: func(ctx context.Context, dest artifact.Destination) (string, error) {
			return r.Backup(ctx, d, dest)
		}})
	}
	if r.Config.BoshDirector.Host != "" {
		ts = append(ts, target{name: r.Config.BoshDirector.Name(), kind: report.KindDirector, backup: r.BackupDirector})
	}
	return ts
}

// result is one target's line in the summary.
type result struct {
	deployment string // the target's name
	kind       string
	err        error
	path       string
	good       bool // the backup at path is good, whatever err says
	copied     string
	size       int64
	took       time.Duration
	lockWindow time.Duration
	src        artifact.Source // the good backup, as written
}

// RunBackup backs up every configured deployment, one after another,
// prunes each one's old backups after a success, prints a summary and
// fails when any deployment failed.
func (r Runner) RunBackup(ctx context.Context) error {
	if err := r.Config.CheckBackup(); err != nil {
		return err
	}
	rep := r.newReport(report.OpBackup)
	deployments, listed := r.Config.Deployments, !r.Config.AllDeployments
	// What stops the run before any deployment is a failed backup too, of
	// every target it knows of by then.
	stopped := func(err error) error {
		rep.fail(ctx, err, r.unreached(deployments, listed))
		return err
	}
	if r.SetupError != nil {
		return stopped(r.SetupError)
	}
	if r.Config.AllDeployments {
		var err error
		if deployments, err = r.Deployments(ctx); err != nil {
			return stopped(fmt.Errorf("listing the Director's deployments: %w", err))
		}
		listed = true
		if i := slices.Index(deployments, r.Config.OwnDeployment); i >= 0 && r.Config.OwnDeployment != "" {
			fmt.Fprintf(r.Out, "[%s] Leaving out %s: it is this errand's own deployment\n", r.now(), r.Config.OwnDeployment)
			deployments = slices.Delete(slices.Clone(deployments), i, i+1)
		}
		if len(deployments) == 0 && r.Config.BoshDirector.Host == "" {
			return stopped(errors.New("the Director has no deployments to back up"))
		}
	}
	store := Store{Root: r.Config.ArtifactDirectory}
	// A bucket that cannot be reached fails the errand before anything is
	// locked: backups that would stay on the platform are not what the
	// operator asked for.
	bucket, err := r.bucket(ctx)
	if err != nil {
		return stopped(err)
	}
	if r.transform, err = r.Config.Transform(); err != nil {
		return stopped(err)
	}
	rep.reached()
	var results []result
	for _, t := range r.targets(deployments) {
		start := r.Now()
		res := result{deployment: t.name, kind: t.kind, err: errors.New("not started: the errand was stopped")}
		if ctx.Err() == nil {
			res = r.backupOne(ctx, store, bucket, t)
		}
		res.err = withStopCause(ctx, res.err)
		results = append(results, res)
		rep.add(ctx, res, start, r.Now())
	}
	rep.finish()
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

func (r Runner) bucket(ctx context.Context) (artifact.Destination, error) {
	if r.Bucket == nil {
		return nil, nil
	}
	return r.Bucket(ctx)
}

func (r Runner) backupOne(ctx context.Context, store Store, bucket artifact.Destination, t target) result {
	deployment := t.name
	if !boshname.Valid(deployment) {
		// Only the Director's list (all_deployments) can get here: the
		// config's names are checked when it is read. Such a name would
		// be a path outside artifact_directory, so it is never used as
		// one, and it is quoted wherever it is printed.
		return result{deployment: strconv.Quote(deployment), kind: t.kind, err: errors.New("not backed up: the Director lists it, " +
			"but it is not a BOSH deployment name (letters, digits, '_', '+', '.', '-', not starting with '.' or '-'), so it cannot name a folder under artifact_directory")}
	}
	res := result{deployment: deployment, kind: t.kind}
	// Never two backups of one target at once: the scheduler and a
	// `bosh run-errand backup` may both start one.
	unlock, err := store.Lock(deployment)
	if err != nil {
		res.err = err
		return res
	}
	defer unlock()
	if t.kind == report.KindDirector {
		fmt.Fprintf(r.Out, "[%s] Backing up the BOSH Director %s\n", r.now(), deployment)
	} else {
		fmt.Fprintf(r.Out, "[%s] Backing up %s\n", r.now(), deployment)
	}
	// Where the backup is written (the bucket, streamed, unless a local
	// copy is kept too), and every destination that keeps it.
	dest := bucket
	if bucket == nil || r.Config.KeepLocalCopy {
		if _, err := store.Dir(deployment); err != nil {
			res.err = err
			return res
		}
		dest = store.Local(deployment)
	}
	kept := nonNil(dest, bucket)
	start := r.Now()
	// Written through the transforms; read back, copied and pruned as
	// stored: the errand holds no identity.
	res.path, res.err = t.backup(ctx, transform.Wrap(dest, r.transform))
	res.took = r.Now().Sub(start)
	src, openErr := openLocation(ctx, dest, res.path)
	res.good = openErr == nil
	if res.good {
		res.src = src
	}
	if res.err != nil || !res.good {
		if res.err == nil {
			res.err = openErr
		}
		return res
	}
	res.size, res.lockWindow = describe(src)
	if dest != bucket && bucket != nil {
		fmt.Fprintf(r.Out, "[%s] Copying %s to %s\n", r.now(), path.Base(res.path), bucket)
		res.copied, res.err = artifact.Copy(ctx, src, path.Base(res.path), bucket)
		if res.err != nil {
			res.err = fmt.Errorf("the backup is good on this instance (%s), but its copy to the bucket failed: %w", res.path, res.err)
			res.src = nil // not a success to report: the backup is still only on the platform
			return res    // retention waits for a backup that is good everywhere
		}
	}
	for _, d := range kept {
		if !r.validates(d, bucket) {
			continue
		}
		if res.err = r.validate(ctx, d, dest, src); res.err != nil {
			res.good = res.good && d != dest
			res.src = nil
			return res
		}
	}
	for _, d := range kept {
		r.prune(ctx, d, deployment)
	}
	return res
}

// validates says whether validate_after_backup asks to read dest back.
func (r Runner) validates(dest, bucket artifact.Destination) bool {
	switch r.Config.ValidateAfterBackup {
	case "always":
		return true
	case "never":
		return false
	}
	return dest == bucket
}

// validate checks the backup at d as `bbr validate` does: src, opened
// where it was written (written), or its copy at d, read back.
func (r Runner) validate(ctx context.Context, d, written artifact.Destination, src artifact.Source) error {
	name := path.Base(src.Location())
	if d != written {
		var err error
		if src, err = d.Open(ctx, name); err != nil {
			return fmt.Errorf("reading %s back from %s: %w", name, d, err)
		}
	}
	v, err := r.check(ctx, src)
	if err != nil {
		return fmt.Errorf("validating %s at %s: %w", name, d, err)
	}
	if bad := v.Bad(); len(bad) > 0 {
		return fmt.Errorf("%s at %s was written but does not validate: %s", name, d, strings.Join(bad, "; "))
	}
	fmt.Fprintf(r.Out, "[%s] Validated %s at %s: %s\n", r.now(), name, d, verdict(v))
	return nil
}

// check validates src as stored: its contents through the identity when
// the errand has one, else, for encrypted files, their stored bytes.
func (r Runner) check(ctx context.Context, src artifact.Source) (artifact.Validation, error) {
	ids := r.transform.Identities
	return artifact.Validate(ctx, transform.Decode(src, ids), artifact.ValidateOptions{StoredOnly: len(ids) == 0})
}

func verdict(v artifact.Validation) string {
	if v.ContentsChecked() {
		return "every file is there and matches its checksums"
	}
	return "every file is there and its stored bytes match (encrypted: the contents are checked with the identity, by the restore errand's validate mode or bbr validate)"
}

func nonNil(dests ...artifact.Destination) []artifact.Destination {
	var out []artifact.Destination
	for _, d := range dests {
		if d != nil && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// openLocation opens the backup at location (a path or a bucket URL: its
// last element is the backup's name).
func openLocation(ctx context.Context, dest artifact.Destination, location string) (artifact.Source, error) {
	if location == "" {
		return nil, errors.New("no backup was started")
	}
	return dest.Open(ctx, path.Base(location))
}

// prune applies retention to the deployment's backups at dest, and says
// what it did.
func (r Runner) prune(ctx context.Context, dest artifact.Destination, deployment string) {
	pruned, err := artifact.Prune(ctx, dest, deployment, r.Config.Retention(), r.Now())
	for _, p := range pruned.Removed {
		fmt.Fprintf(r.Out, "[%s] Retention: removed %s from %s\n", r.now(), p, dest)
	}
	for _, k := range append(pruned.Kept, err) {
		if k != nil {
			fmt.Fprintf(r.Out, "[%s] Retention: %v\n", r.now(), k)
		}
	}
}

func (r Runner) now() string { return r.Now().UTC().Format(time.TimeOnly) }

// describe reads a good backup's size and recorded lock window.
func describe(src artifact.Source) (int64, time.Duration) {
	var size int64
	meta := src.Metadata()
	for file := range meta.Files() {
		size += src.Size(meta.StoredName(file))
	}
	return size, src.Metadata().BackupActivity.LockWindow()
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
			res.lockWindow.Round(time.Second/1000), strings.Join(nonEmpty(res.path, res.copied), " and "))
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
		if res.good {
			fmt.Fprintf(r.Out, "Its backup is complete and kept: %s\n", res.path)
		} else {
			fmt.Fprintf(r.Out, "Its artifact is incomplete (never restored, never counted toward keep_last): %s\n", res.path)
		}
	}
}

func nonEmpty(values ...string) []string {
	var out []string
	for _, v := range values {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func firstLine(err error) string {
	line, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	return line
}
