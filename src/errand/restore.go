package errand

import (
	"context"
	"fmt"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/report"
	"github.com/bbr-release/bbr/src/transform"
)

// RunRestore restores the configured deployment from its newest good
// backup, or from the named one: from the bucket when one is configured,
// else from the persistent disk. The restore is recorded as a backup
// is: a report, the deployment's restore metrics and the webhook.
func (r Runner) RunRestore(ctx context.Context) error {
	if err := r.Config.CheckRestore(); err != nil {
		return err
	}
	if r.Config.Mode == "validate" {
		return r.RunValidate(ctx)
	}
	rep := r.newReport(report.OpRestore)
	start := r.Now()
	src, err := r.restore(ctx)
	d := report.RestoreAttempt(report.KindDeployment, r.Config.Restore.Deployment, start, r.Now(), err)
	if src != nil {
		d.RestoredFrom(src)
	}
	rep.record(ctx, d)
	rep.finish()
	return err
}

// restore restores the configured deployment and returns the backup it
// chose, as stored (nil when none was found).
func (r Runner) restore(ctx context.Context) (artifact.Source, error) {
	if r.SetupError != nil {
		return nil, r.SetupError
	}
	d := r.Config.Restore.Deployment
	dest, err := r.bucket(ctx)
	if err != nil {
		return nil, err
	}
	if r.transform, err = r.Config.Transform(); err != nil {
		return nil, err
	}
	if dest == nil {
		dest = Store{Root: r.Config.ArtifactDirectory}.Local(d)
	}
	var stored artifact.Source
	if r.Config.Restore.Artifact == "" {
		stored, err = newest(ctx, dest, d)
	} else {
		stored, err = named(ctx, dest, d, r.Config.Restore.Artifact)
	}
	if err != nil {
		return nil, err
	}
	unlock, err := Store{Root: r.Config.ArtifactDirectory}.Lock(d)
	if err != nil {
		return stored, err
	}
	defer unlock()
	src := transform.Decode(stored, r.transform.Identities)
	if err := transform.CheckIdentities(ctx, src); err != nil {
		return stored, fmt.Errorf("%s: %w (set encryption.identity on the restore job)", src.Location(), err)
	}
	fmt.Fprintf(r.Out, "[%s] Restoring %s from %s\n", r.now(), d, src.Location())
	start := r.Now()
	if err := r.Restore(ctx, d, src); err != nil {
		return stored, fmt.Errorf("restoring %s from %s: %w", d, src.Location(), err)
	}
	fmt.Fprintf(r.Out, "[%s] Restored %s from %s in %s\n", r.now(), d, src.Location(), r.Now().Sub(start).Round(time.Millisecond))
	return stored, nil
}
