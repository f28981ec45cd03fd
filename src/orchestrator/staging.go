package orchestrator

import (
	"context"
	"fmt"

	"github.com/bbr-release/bbr/src/instance"
)

// claimStaging makes sure no other run uses the staging directory of any
// instance. With claim it creates the directory atomically (mkdir), which
// makes it this run's: two runs on one deployment cannot both pass, so a
// second backup or restore refuses before it locks anything, and leaves
// the first one's directory alone.
func (o *Orchestrator) claimStaging(ctx context.Context, d *Deployment, claim bool) error {
	owner := instance.OwnerText(d.sshUser, o.Now())
	return forEach(d.Instances, o.Parallelism, func(inst *Instance) error {
		holder, err := takeStaging(ctx, inst, claim, owner)
		if err != nil {
			return fmt.Errorf("Error checking the staging directory on instance %s: %w", inst.Name(), err)
		}
		if holder == nil {
			return nil // claimed, or (not claiming) nothing there
		}
		msg := fmt.Errorf("Directory %s already exists on instance %s", inst.conn.StagingRoot(), inst.Name()) //nolint:staticcheck // upstream bbr's words
		alive, err := live(ctx, inst.conn, holder)
		switch {
		case err != nil:
			return fmt.Errorf("%w: %w", msg, err)
		case alive:
			return fmt.Errorf("%w: it belongs to another %s, which is still running; wait for it to finish", msg, holder.Owner)
		}
		return adviseCleanup(msg)
	})
}

// takeStaging claims the instance's staging directory (with claim) or
// checks it. It returns who holds it, nil when this run claimed it or, not
// claiming, nobody does.
func takeStaging(ctx context.Context, inst *Instance, claim bool, owner string) (*instance.Holder, error) {
	if !claim {
		return inst.conn.CheckStaging(ctx)
	}
	claimed, holder, err := inst.conn.ClaimStaging(ctx, owner)
	if claimed {
		inst.stagingCreated.Store(true)
	}
	return holder, err
}

// live says whether the run holding a staging directory is still going:
// its SSH user has processes (its session) only while it runs. A holder
// that names no user (director mode, where the run uses the operator's
// own user, or an older bbr) cannot be told apart from a dead one and is
// taken as gone.
func live(ctx context.Context, c StagingClaim, h *instance.Holder) (bool, error) {
	user := h.User()
	if user == "" {
		return false, nil
	}
	return c.UserActive(ctx, user)
}
