package orchestrator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/bbr-release/bbr/src/artifact"
)

// RestoreOptions configure one deployment restore.
type RestoreOptions struct {
	Deployment string
	// Source is the backup, opened (a good one) from its destination.
	Source artifact.Source
	// Serial runs the restore scripts one instance at a time, as upstream
	// does, for releases that rely on it. By default instances restore in
	// parallel: the script contract fixes no order within a stage.
	Serial bool
}

// Restore restores the deployment from the artifact. Everything that can
// be checked is checked before anything is locked: that the artifact has
// every file, the topology, leftover staging directories, the lock order;
// then each file is read once, checked against its checksums as it
// streams to the instances (artifact.CopyVerified) and checked again
// there. Only when every file arrived and matched is anything locked; a
// mismatch stops the restore and what was staged is removed. The lock
// window covers only the restore scripts.
func (o *Orchestrator) Restore(ctx context.Context, opts RestoreOptions) (err error) {
	o.Logger.Info("bbr", "Starting restore of %s...\n", opts.Deployment)
	art := opts.Source
	o.Logger.Info("bbr", "Validating backup artifact for %s...\n", opts.Deployment)
	if err := artifact.CheckStored(art); err != nil {
		return err
	}

	d, err := o.find(ctx, opts.Deployment)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, o.cleanup(d)) }()

	layers, err := o.checkRestorable(ctx, d, art.Metadata())
	if err != nil {
		return err
	}
	if err := o.upload(ctx, d, art); err != nil {
		return err
	}
	if err := o.lockedRestore(ctx, d, layers, opts.Serial); err != nil {
		return err
	}
	o.Logger.Info("bbr", "Completed restore of %s\n", d.Name)
	return nil
}

func (o *Orchestrator) checkRestorable(ctx context.Context, d *Deployment, meta artifact.Metadata) ([][]*Job, error) {
	restorable := d.JobsWith(ScriptRestore)
	if len(restorable) == 0 {
		return nil, fmt.Errorf("Deployment '%s' has no restore scripts", d.Name)
	}
	for _, j := range restorable {
		if j.Metadata.RestoreName != "" {
			return nil, fmt.Errorf("job %s on %s uses the discontinued metadata key restore_name: bbr cannot restore it", j.Name, j.Instance.Name())
		}
	}
	if err := matchTopology(d, meta); err != nil {
		return nil, err
	}
	if err := o.claimStaging(ctx, d, true); err != nil {
		return nil, err
	}
	return lockLayers(d.Jobs(), true)
}

// matchTopology checks that every instance in the artifact exists in the
// deployment (upstream's check: the same groups and indexes).
func matchTopology(d *Deployment, meta artifact.Metadata) error {
	for _, mi := range meta.Instances {
		found := false
		for _, inst := range d.Instances {
			if inst.Group == mi.Name && strconv.Itoa(inst.Index) == mi.Index {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("Deployment '%s' does not match the structure of the provided backup: it has no instance %s/%s", d.Name, mi.Name, mi.Index)
		}
	}
	return nil
}

// restoreFile is the artifact file a job restores from: the deployment-wide
// custom artifact for backup-one-restore-all jobs, else its own.
func restoreFile(j *Job, meta artifact.Metadata) string {
	if j.BackupOneRestoreAll {
		for _, c := range meta.CustomArtifacts {
			if c.Name == j.CustomArtifactName() {
				return artifact.CustomFileName(c.Name)
			}
		}
	}
	return artifact.InstanceFileName(j.Instance.Group, strconv.Itoa(j.Instance.Index), j.Name)
}

// upload streams each job's artifact into its staging directory and checks
// what landed against the metadata.
func (o *Orchestrator) upload(ctx context.Context, d *Deployment, art artifact.Source) error {
	meta := art.Metadata()
	files := meta.Files()
	jobs := d.JobsWith(ScriptRestore)
	progress := &copyProgress{jobs: len(jobs), total: uploadSize(art, jobs, meta)}
	defer o.reportProgress("Restoring", progress)()
	return forEach(jobs, o.Parallelism, func(j *Job) error {
		inst := j.Instance
		file := restoreFile(j, meta)
		want, ok := files[file]
		if !ok {
			return fmt.Errorf("the backup has no artifact for job %s on %s/%d (%s)", j.Name, inst.Group, inst.Index, file)
		}
		o.Logger.Info("bbr", "Copying backup for job %s on %s/%d...", j.Name, inst.Group, inst.Index)
		f, err := art.Open(ctx, file)
		if err != nil {
			return err
		}
		defer f.Close()
		inst.stagingCreated.Store(true)
		counted, jobDone := progress.job(fmt.Sprintf("%s/%d %s", inst.Group, inst.Index, j.Name), art.Size(file), bufio.NewReaderSize(f, 256<<10))
		err = streamVerified(ctx, inst.conn, j.stagingName(), file, counted, want)
		jobDone(err)
		if err != nil {
			return fmt.Errorf("Unable to send backup to remote machine %s for job %s: %w", inst.Name(), j.Name, err) //nolint:staticcheck // upstream bbr's words
		}
		got, err := inst.conn.Checksums(ctx, j.stagingName())
		if err != nil {
			return err
		}
		if diff := artifact.Compare(want, got); diff != nil {
			return fmt.Errorf("Backup couldn't be transferred, checksum failed for %s %s - checksums don't match for %v", inst.Name(), j.Name, diff)
		}
		o.Logger.Info("bbr", "Finished copying backup for job %s on %s/%d.", j.Name, inst.Group, inst.Index)
		progress.done.Add(1)
		return nil
	})
}

// streamVerified uploads the job's tar, passing on only what matches the
// metadata's checksums (artifact.CopyVerified): a corrupt file stops the
// upload before anything is locked.
func streamVerified(ctx context.Context, t Transfer, name, file string, tarFile io.Reader, want artifact.Checksums) error {
	pr, pw := io.Pipe()
	copied := make(chan error, 1)
	go func() {
		err := artifact.CopyVerified(pw, tarFile, want)
		pw.CloseWithError(err)
		copied <- err
	}()
	err := t.StreamIn(ctx, name, pr)
	pr.CloseWithError(errUploadEnded) // unblocks the copy if tar stopped reading
	copyErr := <-copied
	var corrupt *artifact.NotCheckedError
	switch {
	case copyErr == nil || errors.Is(copyErr, errUploadEnded):
		return err // the instance's side failed first, or nothing did
	case errors.As(copyErr, &corrupt):
		return fmt.Errorf("backup is corrupted: checksums don't match for %s: %w", file, copyErr)
	}
	return fmt.Errorf("reading %s from the backup: %w", file, copyErr)
}

var errUploadEnded = errors.New("the upload ended")

// uploadSize is what a restore uploads: the size of each job's tar (a job
// restored on several instances counts each time).
func uploadSize(art artifact.Source, jobs []*Job, meta artifact.Metadata) int64 {
	var total int64
	for _, j := range jobs {
		total += art.Size(restoreFile(j, meta))
	}
	return total
}

// lockedRestore locks serially in order, runs the restore scripts (jobs of
// an instance one after another; instances in parallel unless serial), and
// always unlocks in reverse order.
func (o *Orchestrator) lockedRestore(ctx context.Context, d *Deployment, layers [][]*Job, serial bool) (err error) {
	defer func() {
		err = errors.Join(err, o.unlockRestore(context.WithoutCancel(ctx), layers))
	}()
	if err := o.lockRestore(ctx, layers); err != nil {
		return err
	}
	o.Logger.Info("bbr", "Running restore scripts...")
	if serial {
		// Upstream's order: stop at the first instance that fails.
		for _, inst := range d.Instances {
			if err := o.restoreInstance(ctx, inst); err != nil {
				return err
			}
		}
	} else if err := forEach(d.Instances, o.Parallelism, func(inst *Instance) error {
		return o.restoreInstance(ctx, inst)
	}); err != nil {
		return err
	}
	o.Logger.Info("bbr", "Finished running restore scripts.")
	return nil
}

// restoreInstance runs the restore script of every job on the instance,
// one after another, attempting all of them.
func (o *Orchestrator) restoreInstance(ctx context.Context, inst *Instance) error {
	var errs []error
	for _, j := range withScript(inst.Jobs, ScriptRestore) {
		o.Logger.Info("bbr", "Restoring %s on %s...", j.Name, inst.Name())
		if err := runScript(ctx, j, ScriptRestore, artifactEnv(j), nil); err != nil {
			o.Logger.Info("bbr", "Error restoring %s on %s.", j.Name, inst.Name())
			errs = append(errs, fmt.Errorf("Error attempting to run restore for job %s on %s: %w", j.Name, inst.Name(), err))
			continue
		}
		o.Logger.Info("bbr", "Finished restoring %s on %s.", j.Name, inst.Name())
	}
	return errors.Join(errs...)
}
