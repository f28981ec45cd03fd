package orchestrator

import (
	"context"
	"errors"
)

// PreBackupCheck says whether the deployment can be backed up: it can be
// reached, it has backup scripts, no earlier run left its staging
// directory, and its lock order has no cycle. It changes nothing.
func (o *Orchestrator) PreBackupCheck(ctx context.Context, deployment string) (err error) {
	d, err := o.find(ctx, deployment)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, o.cleanup(d)) }()
	o.Logger.Info("bbr", "Running pre-checks for backup of %s...\n", d.Name)
	_, err = o.checkBackupable(ctx, d, false)
	return err
}
