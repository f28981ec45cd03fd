package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
)

// BackupOptions configure one deployment backup.
type BackupOptions struct {
	Deployment string
	// Destination is where the backup is written: a local directory
	// (artifact.Local) or a bucket.
	Destination  artifact.Destination
	WithManifest bool
	// UnsafeLockFree skips the lock and unlock scripts (upstream's
	// experimental --unsafe-lock-free): the backup may be inconsistent.
	UnsafeLockFree bool
	// SkipSpaceCheck skips the free-space check made before locking.
	SkipSpaceCheck bool
}

// Backup takes a backup of the deployment and returns the artifact's path
// (also when it fails part-way, so the caller can report it).
//
// The order is upstream's: find, check, create the artifact, lock, run the
// backup scripts, unlock, and only then copy the artifacts off the
// instances, so the lock window covers only the lock and backup scripts.
func (o *Orchestrator) Backup(ctx context.Context, opts BackupOptions) (artifactPath string, err error) {
	d, err := o.find(ctx, opts.Deployment)
	if err != nil {
		return "", err
	}
	defer func() { err = errors.Join(err, o.cleanup(d)) }()

	o.Logger.Info("bbr", "Running pre-checks for backup of %s...\n", d.Name)
	layers, err := o.checkBackupable(ctx, d, true)
	if err != nil {
		return "", err
	}

	if !opts.SkipSpaceCheck {
		if err := o.checkSpace(opts.Destination, d.Name); err != nil {
			return "", err
		}
	}
	o.Logger.Info("bbr", "Starting backup of %s...\n", d.Name)
	start := o.Now()
	art, err := opts.Destination.Create(ctx, artifact.BackupName(d.Name, start), start)
	if err != nil {
		return "", err
	}
	// The artifact gets its final name only if every file was drained and
	// verified; otherwise it is renamed <name>.failed, with the reason
	// inside. A failed unlock after a complete drain leaves a good backup
	// (and exit bit 8), as upstream.
	drained := false
	defer func() {
		// Only a complete drain makes a good backup, whatever err says: a
		// panic unwinding through here leaves err nil.
		failure := err
		if drained {
			failure = nil
		} else if failure == nil {
			failure = errors.New("bbr stopped before every job's backup was copied")
		}
		if ferr := art.Finish(o.Now(), failure); ferr != nil {
			err = errors.Join(err, ferr)
		}
		artifactPath = art.Location()
	}()
	if opts.WithManifest {
		if err := saveManifest(ctx, d, art); err != nil {
			return art.Location(), err
		}
	}

	var backupErr, unlockErr error
	if opts.UnsafeLockFree {
		backupErr = o.lockFreeBackup(ctx, d)
	} else {
		locked := o.Now()
		backupErr, unlockErr = o.lockedBackup(ctx, d, layers)
		unlocked := o.Now()
		o.Logger.Info("bbr", "Lock window: %s", unlocked.Sub(locked).Round(time.Millisecond))
		if err := art.RecordLockWindow(locked, unlocked); err != nil {
			return art.Location(), errors.Join(backupErr, unlockErr, err)
		}
	}
	if backupErr != nil {
		return art.Location(), errors.Join(backupErr, unlockErr)
	}
	// A failed unlock does not make the staged backups bad: drain anyway,
	// as upstream does, and report both.
	if err := o.drain(ctx, d, art); err != nil {
		o.Logger.Info("bbr", "Failed to create backup of %s on %v, failed during drain step\n", d.Name, o.Now())
		// The deferred cleanup removes what the drain left; only its own
		// failure (or an unlock's) calls for a cleanup run.
		return art.Location(), errors.Join(unlockErr, err)
	}
	drained = true
	o.Logger.Info("bbr", "Backup created of %s on %v\n", d.Name, o.Now())
	return art.Location(), unlockErr
}

// spaceChecker is a destination on a disk that can fill up.
type spaceChecker interface {
	CheckSpace(deployment string) (skipped string, err error)
}

// checkSpace refuses, before anything is locked, a destination that lacks
// the room the last backup of the deployment there took: a full disk is
// otherwise found only in the drain, after the lock window. A bucket has
// no such limit to check.
func (o *Orchestrator) checkSpace(dest artifact.Destination, name string) error {
	sc, ok := dest.(spaceChecker)
	if !ok {
		return nil
	}
	skipped, err := sc.CheckSpace(name)
	if skipped != "" {
		o.Logger.Info("bbr", "The free-space check is skipped: %s", skipped)
	}
	return err
}

// saveManifest asks for the manifest again rather than saving the one find
// read, as upstream does: the backup holds the manifest of backup time.
func saveManifest(ctx context.Context, d *Deployment, art artifact.Writer) error {
	if d.fetchManifest == nil {
		return fmt.Errorf("there is no manifest of %s to save", d.Name)
	}
	m, err := d.fetchManifest(ctx)
	if err != nil {
		return err
	}
	return art.SaveManifest(m)
}

// checkBackupable refuses a deployment bbr cannot back up before anything
// is locked: no backup scripts, a staging directory another run holds, a
// lock cycle. With claim, it also takes the staging directory for this run.
func (o *Orchestrator) checkBackupable(ctx context.Context, d *Deployment, claim bool) ([][]*Job, error) {
	if len(d.JobsWith(ScriptBackup)) == 0 {
		return nil, fmt.Errorf("Deployment '%s' has no backup scripts", d.Name)
	}
	if err := o.claimStaging(ctx, d, claim); err != nil {
		return nil, err
	}
	return lockLayers(d.Jobs(), false)
}

// lockedBackup locks the jobs layer by layer, runs the backup scripts, and
// always unlocks every job in reverse order, on a context the run's
// cancellation does not reach, so that a cancelled run still unlocks.
func (o *Orchestrator) lockedBackup(ctx context.Context, d *Deployment, layers [][]*Job) (backupErr, unlockErr error) {
	defer func() {
		unlockErr = o.unlockBackup(context.WithoutCancel(ctx), layers, backupErr == nil)
	}()
	if err := o.lockBackup(ctx, layers); err != nil {
		return err, nil
	}
	return o.runBackupScripts(ctx, d), nil
}

// lockFreeBackup runs only the backup scripts, logging the skipped lock
// and unlock steps with upstream's wording.
func (o *Orchestrator) lockFreeBackup(ctx context.Context, d *Deployment) error {
	o.Logger.Info("bbr", "Skipping lock for deployment")
	err := o.runBackupScripts(ctx, d)
	if err != nil {
		o.Logger.Info("bbr", "Skipping unlock after unsuccessful backup for deployment")
	} else {
		o.Logger.Info("bbr", "Skipping unlock after successful backup for deployment")
	}
	return err
}

func (o *Orchestrator) runBackupScripts(ctx context.Context, d *Deployment) error {
	o.Logger.Info("bbr", "Running backup scripts...")
	err := forEach(d.JobsWith(ScriptBackup), o.Parallelism, func(j *Job) error {
		o.Logger.Info("bbr", "Backing up %s on %s...", j.Name, j.Instance.Name())
		j.Instance.stagingCreated.Store(true)
		if err := j.Instance.conn.MakeStagingDir(ctx, j.stagingName()); err != nil {
			return fmt.Errorf("%s: %w", j.Instance.Name(), err)
		}
		if err := runScript(ctx, j, ScriptBackup, artifactEnv(j), nil); err != nil {
			o.Logger.Info("bbr", "Error backing up %s on %s.", j.Name, j.Instance.Name())
			return fmt.Errorf("Error attempting to run backup for job %s on %s: %w", j.Name, j.Instance.Name(), err)
		}
		o.Logger.Info("bbr", "Finished backing up %s on %s.", j.Name, j.Instance.Name())
		return nil
	})
	if err != nil {
		return err
	}
	o.Logger.Info("bbr", "Finished running backup scripts.")
	return nil
}

// drain copies every job's staged backup into the artifact.
func (o *Orchestrator) drain(ctx context.Context, d *Deployment, art artifact.Writer) error {
	jobs := d.JobsWith(ScriptBackup)
	progress := &copyProgress{jobs: len(jobs)}
	defer o.reportProgress("Backing up", progress)()
	return forEach(jobs, o.Parallelism, func(j *Job) error {
		err := o.drainJob(ctx, j, art, progress)
		if err == nil {
			progress.done.Add(1)
		}
		return err
	})
}

// drainJob streams the job's staging directory into a local tar, hashing
// each file as it is written, while the instance hashes the same files:
// one read on each side, and both sides must agree.
func (o *Orchestrator) drainJob(ctx context.Context, j *Job, art artifact.Writer, progress *copyProgress) error {
	inst := j.Instance
	file := artifact.InstanceFileName(inst.Group, strconv.Itoa(inst.Index), j.Name)
	if j.customArtifact() {
		file = artifact.CustomFileName(j.CustomArtifactName())
	}
	o.Logger.Info("bbr", "Copying backup for job %s on %s/%s...", j.Name, inst.Group, inst.ID)
	started := o.Now()

	type result struct {
		sums artifact.Checksums
		err  error
	}
	remoteSums := make(chan result, 1)
	sumCtx, stopSums := context.WithCancel(ctx)
	defer stopSums()
	go func() {
		sums, err := inst.conn.Checksums(sumCtx, j.stagingName())
		remoteSums <- result{sums, err}
	}()

	pr, pw := io.Pipe()
	streamErr := make(chan error, 1)
	go func() {
		err := inst.conn.StreamOut(ctx, j.stagingName(), pw)
		pw.CloseWithError(err)
		streamErr <- err
	}()
	counted, jobDone := progress.job(fmt.Sprintf("%s/%d %s", inst.Group, inst.Index, j.Name), 0, pr)
	localSums, size, writeErr := art.WriteTar(file, counted)
	pr.CloseWithError(writeErr) // unblocks the stream if writing failed
	jobDone(writeErr)
	if err := errors.Join(<-streamErr, writeErr); err != nil {
		stopSums() // its result no longer matters
		<-remoteSums
		if errors.Is(writeErr, syscall.ENOSPC) {
			return fmt.Errorf("Error streaming backup from remote instance %s for job %s: the disk holding the artifact is full (free space or choose another --artifact-path): %w", inst.Name(), j.Name, writeErr)
		}
		return fmt.Errorf("Error streaming backup from remote instance %s for job %s: %w", inst.Name(), j.Name, err)
	}
	o.Logger.Info("bbr", "Finished copying backup -- %s for job %s on %s/%s...", artifact.HumanSize(size), j.Name, inst.Group, inst.ID)

	o.Logger.Info("bbr", "Starting validity checks -- for job %s on %s/%s...", j.Name, inst.Group, inst.ID)
	r := <-remoteSums
	if r.err != nil {
		return fmt.Errorf("Error validating backup of job %s on %s: %w", j.Name, inst.Name(), r.err)
	}
	if diff := artifact.Compare(r.sums, localSums); diff != nil {
		return fmt.Errorf("Backup is corrupted, checksum failed for %s %s - checksums don't match for %v", inst.Name(), j.Name, diff)
	}
	if j.customArtifact() {
		err := art.AddCustomArtifact(j.CustomArtifactName(), localSums)
		if err != nil {
			return err
		}
	} else if err := art.AddInstanceArtifact(inst.Group, inst.Index, j.Name, localSums); err != nil {
		return err
	}
	if o.JobCopied != nil {
		o.JobCopied(file, o.Now().Sub(started))
	}
	if err := inst.conn.RemoveStagingDir(ctx, j.stagingName()); err != nil {
		return fmt.Errorf("removing %s on %s: %w", j.StagingDir(), inst.Name(), err)
	}
	o.Logger.Info("bbr", "Finished validity checks -- for job %s on %s/%s...", j.Name, inst.Group, inst.ID)
	return nil
}
