package orchestrator

import (
	"context"
	"errors"
	"fmt"
)

// Standalone is director mode (`bbr director`): one VM, the BOSH Director
// itself, reached straight over SSH with an operator's key. There is no
// Director API to ask, no manifest (so job releases are unknown) and no
// SSH user to remove afterwards. Upstream names the VM bosh/0.
type Standalone struct {
	// Name names the artifact (<Name>_<timestamp>): the host without
	// scheme or port.
	Name string
	// Dial opens the connection to the VM.
	Dial func(ctx context.Context) (InstanceConn, error)
}

// findStandalone is find for director mode.
func (o *Orchestrator) findStandalone(ctx context.Context) (*Deployment, error) {
	o.Logger.Info("bbr", "Looking for scripts")
	conn, err := o.Standalone.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", o.Standalone.Name, err)
	}
	inst := &Instance{Group: "bosh", ID: "0", Index: 0, Bootstrap: true, conn: conn, scriptTimeout: o.ScriptTimeout}
	d := &Deployment{Name: o.Standalone.Name, Instances: []*Instance{inst}}
	if err := o.discoverJobs(ctx, d, nil); err != nil {
		cctx, cancel := o.freshContext()
		defer cancel()
		return nil, errors.Join(err, o.cleanupInstances(cctx, d, nil))
	}
	d.discovered.Store(true)
	o.Leftovers.watch(d)
	return d, nil
}

// omitReleases drops the releases from lock-ordering metadata, as upstream
// does in director mode: without a manifest no job's release is known, so
// jobs are matched by name alone.
func omitReleases(ls []LockBefore) []LockBefore {
	out := make([]LockBefore, 0, len(ls))
	for _, l := range ls {
		out = append(out, LockBefore{JobName: l.JobName})
	}
	return out
}
