package errand

import (
	"context"
	"fmt"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/transform"
)

// RunRestore restores the configured deployment from its newest good
// backup, or from the named one: from the bucket when one is configured,
// else from the persistent disk.
func (r Runner) RunRestore(ctx context.Context) error {
	if err := r.Config.CheckRestore(); err != nil {
		return err
	}
	if r.Config.Mode == "validate" {
		return r.RunValidate(ctx)
	}
	if r.SetupError != nil {
		return r.SetupError
	}
	d := r.Config.Restore.Deployment
	dest, err := r.bucket(ctx)
	if err != nil {
		return err
	}
	if r.transform, err = r.Config.Transform(); err != nil {
		return err
	}
	if dest == nil {
		dest = Store{Root: r.Config.ArtifactDirectory}.Local(d)
	}
	var src artifact.Source
	if r.Config.Restore.Artifact == "" {
		src, err = newest(ctx, dest, d)
	} else {
		src, err = named(ctx, dest, d, r.Config.Restore.Artifact)
	}
	if err != nil {
		return err
	}
	unlock, err := Store{Root: r.Config.ArtifactDirectory}.Lock(d)
	if err != nil {
		return err
	}
	defer unlock()
	src = transform.Decode(src, r.transform.Identities)
	if err := transform.CheckIdentities(ctx, src); err != nil {
		return fmt.Errorf("%s: %w (set encryption.identity on the restore job)", src.Location(), err)
	}
	fmt.Fprintf(r.Out, "[%s] Restoring %s from %s\n", r.now(), d, src.Location())
	start := r.Now()
	if err := r.Restore(ctx, d, src); err != nil {
		return fmt.Errorf("restoring %s from %s: %w", d, src.Location(), err)
	}
	fmt.Fprintf(r.Out, "[%s] Restored %s from %s in %s\n", r.now(), d, src.Location(), r.Now().Sub(start).Round(time.Millisecond))
	return nil
}
