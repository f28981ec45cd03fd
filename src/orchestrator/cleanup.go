package orchestrator

import (
	"context"
	"errors"
)

// BackupCleanup undoes what an interrupted or failed backup may have left:
// it runs every post-backup-unlock (with BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL
// =false, as upstream does) and removes /var/vcap/store/bbr-backup from
// every instance. Unlock scripts must be idempotent: they run whether or
// not anything was locked.
func (o *Orchestrator) BackupCleanup(ctx context.Context, deployment string) error {
	return o.cleanupAfter(ctx, deployment, func(d *Deployment) error {
		layers, err := lockLayers(d.Jobs(), false)
		if err != nil {
			return err
		}
		return o.unlockBackup(ctx, layers, false)
	})
}

// RestoreCleanup is BackupCleanup for restore: post-restore-unlock runs
// serially in reverse lock order, then the staging directory is removed.
func (o *Orchestrator) RestoreCleanup(ctx context.Context, deployment string) error {
	return o.cleanupAfter(ctx, deployment, func(d *Deployment) error {
		layers, err := lockLayers(d.Jobs(), true)
		if err != nil {
			return err
		}
		return o.unlockRestore(ctx, layers)
	})
}

func (o *Orchestrator) cleanupAfter(ctx context.Context, deployment string, unlock func(*Deployment) error) (err error) {
	d, err := o.find(ctx, deployment)
	if err != nil {
		return err
	}
	// Remove the staging directory wherever it may be, whoever made it.
	for _, inst := range d.Instances {
		inst.stagingCreated.Store(true)
	}
	defer func() { err = errors.Join(err, o.cleanup(d)) }()
	if err := unlock(d); err != nil {
		return err
	}
	o.Logger.Info("bbr", "'%s' cleaned up\n", deployment)
	return nil
}
