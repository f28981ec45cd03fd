package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// cleanup removes what the run left on the instances: the staging
// directory where it may exist, then what the Finder set up (the
// connection, the SSH user). It runs on every instance even if some fail,
// on a context the run's cancellation does not reach.
func (o *Orchestrator) cleanup(d *Deployment) error {
	run := o.run()
	ctx, cancel := run.freshContext()
	defer cancel()
	all := append(slices.Clone(d.Instances), d.skipped...)
	return cleanupError(forEach(all, o.Parallelism, func(inst *Instance) (err error) {
		defer func() { inst.cleaned.Store(err == nil) }()
		if inst.stagingCreated.Load() {
			if rmErr := inst.conn.RemoveStaging(ctx); rmErr != nil {
				err = fmt.Errorf("removing %s on %s: %w", inst.conn.StagingRoot(), inst.Name(), rmErr)
			}
		}
		return errors.Join(err, o.Finder.Release(ctx, run, d, inst))
	}))
}

// BackupCleanup undoes what an interrupted or failed backup may have left:
// it runs every post-backup-unlock (with BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL
// =false, as upstream does) and removes /var/vcap/store/bbr-backup from
// every instance. Unlock scripts must be idempotent: they run whether or
// not anything was locked. It refuses while the run that holds a staging
// directory is still going, unless force.
func (o *Orchestrator) BackupCleanup(ctx context.Context, deployment string, force bool) error {
	return o.cleanupAfter(ctx, deployment, force, func(d *Deployment) error {
		layers, err := lockLayers(d.Jobs(), false)
		if err != nil {
			return err
		}
		return o.unlockBackup(ctx, layers, false)
	})
}

// RestoreCleanup is BackupCleanup for restore: post-restore-unlock runs
// serially in reverse lock order, then the staging directory is removed.
func (o *Orchestrator) RestoreCleanup(ctx context.Context, deployment string, force bool) error {
	return o.cleanupAfter(ctx, deployment, force, func(d *Deployment) error {
		layers, err := lockLayers(d.Jobs(), true)
		if err != nil {
			return err
		}
		return o.unlockRestore(ctx, layers)
	})
}

func (o *Orchestrator) cleanupAfter(ctx context.Context, deployment string, force bool, unlock func(*Deployment) error) (err error) {
	d, err := o.find(ctx, deployment)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, o.cleanup(d)) }()
	if !force {
		if err := o.refuseLiveRun(ctx, d); err != nil {
			return err
		}
	}
	// Remove the staging directory wherever it may be, whoever made it.
	for _, inst := range d.Instances {
		inst.stagingCreated.Store(true)
	}
	if err := unlock(d); err != nil {
		return err
	}
	o.Logger.Info("bbr", "'%s' cleaned up\n", deployment)
	return nil
}

// refuseLiveRun fails when a run that is still going holds the staging
// directory of any instance: unlocking its jobs and removing its staged
// backups would break it.
func (o *Orchestrator) refuseLiveRun(ctx context.Context, d *Deployment) error {
	return forEach(d.Instances, o.Parallelism, func(inst *Instance) error {
		holder, err := inst.conn.CheckStaging(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w (pass --force to clean up anyway)", inst.Name(), err)
		}
		if holder == nil {
			return nil
		}
		alive, err := live(ctx, inst.conn, holder)
		if err != nil {
			return fmt.Errorf("%s: %w (pass --force to clean up anyway)", inst.Name(), err)
		}
		if alive {
			return fmt.Errorf("refusing to clean up %s: its staging directory %s belongs to a %s, which is still running; wait for it to end, or pass --force if you are sure it is not",
				inst.Name(), inst.conn.StagingRoot(), holder.Owner)
		}
		return nil
	})
}
