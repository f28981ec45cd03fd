package errand

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/boshname"
)

// RunValidate is the restore errand's validate mode: it checks the
// newest good backup of each deployment where backups are kept (the
// bucket, else the persistent disk), as `bbr validate` does, touching no
// platform, and fails when any is not good or missing.
func (r Runner) RunValidate(ctx context.Context) error {
	var err error
	if r.transform, err = r.Config.Transform(); err != nil {
		return err
	}
	bucket, err := r.bucket(ctx)
	if err != nil {
		return err
	}
	deployments := r.Config.Validate.Deployments
	if len(deployments) == 0 {
		if deployments, err = r.backedUp(ctx, bucket); err != nil {
			return err
		}
		if len(deployments) == 0 {
			return errors.New("there are no backups to validate")
		}
	}
	if len(r.transform.Identities) == 0 {
		fmt.Fprintf(r.Out, "[%s] No encryption.identity: encrypted files are checked by their stored bytes only\n", r.now())
	}
	w := tabwriter.NewWriter(r.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "deployment\tbackup\tsize\ttransforms\tverdict")
	var failed []string
	for _, d := range deployments {
		name, v, err := r.validateNewest(ctx, r.destination(bucket, d), d)
		switch {
		case err != nil:
			fmt.Fprintf(w, "%s\t%s\t-\t-\tBAD: %v\n", d, orDash(name), err)
		case !v.OK():
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\tBAD: %s\n", d, name, artifact.HumanSize(v.Size), v.Transforms, strings.Join(v.Bad(), "; "))
		default:
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d, name, artifact.HumanSize(v.Size), v.Transforms, goodVerdict(v))
			continue
		}
		failed = append(failed, d)
	}
	_ = w.Flush()
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d deployments have no good newest backup: %s", len(failed), len(deployments), strings.Join(failed, ", "))
	}
	return nil
}

func (r Runner) destination(bucket artifact.Destination, deployment string) artifact.Destination {
	if bucket != nil {
		return bucket
	}
	return Store{Root: r.Config.ArtifactDirectory}.Local(deployment)
}

func (r Runner) validateNewest(ctx context.Context, dest artifact.Destination, deployment string) (string, artifact.Validation, error) {
	src, err := newest(ctx, dest, deployment)
	if err != nil {
		return "", artifact.Validation{}, err
	}
	v, err := r.check(ctx, src)
	return path.Base(src.Location()), v, err
}

// backedUp lists the deployments that have backups at the bucket, or
// folders under artifact_directory.
func (r Runner) backedUp(ctx context.Context, bucket artifact.Destination) ([]string, error) {
	if bucket != nil {
		all, err := bucket.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the backups at %s: %w", bucket, err)
		}
		var out []string
		for _, b := range all {
			if !slices.Contains(out, b.Deployment) {
				out = append(out, b.Deployment)
			}
		}
		slices.Sort(out)
		return out, nil
	}
	entries, err := os.ReadDir(r.Config.ArtifactDirectory)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && boshname.Valid(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func goodVerdict(v artifact.Validation) string {
	if v.ContentsChecked() {
		return "GOOD"
	}
	return "GOOD as stored (contents not decrypted)"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
