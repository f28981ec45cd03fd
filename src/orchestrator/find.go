package orchestrator

import (
	"context"
	"errors"
	"sort"
	"time"
)

// Finder finds a deployment and connects to its instances, and releases
// what that set up. It has two implementations: the BOSH Director's
// (DirectorFinder: the Director's API lists the instances and sets up an
// SSH user for the run on each) and a standalone VM's (Standalone, `bbr
// director`: one VM reached with the operator's own user and key). The
// workflows ask nothing else of either, so no other code tells the two
// modes apart.
type Finder interface {
	// Find returns the deployment with every instance connected and no
	// job yet discovered. A failed Find has released what it set up.
	Find(ctx context.Context, run Run, name string) (*Deployment, error)
	// Release closes the instance's connection and removes whatever
	// else Find set up on it for this run.
	Release(ctx context.Context, run Run, d *Deployment, inst *Instance) error
}

// Run is what a Finder shares with the workflow it finds for. It is taken
// from the Orchestrator at each call, so that a copy of the Orchestrator
// with its own Logger (one per deployment of --all-deployments) logs the
// Finder's lines there too.
type Run struct {
	Logger Logger
	// Parallelism bounds the Finder's remote operations at once.
	Parallelism int
	// CleanupTimeout bounds the release of a failed Find's set-up.
	CleanupTimeout time.Duration
	// Leftovers, when set, is told what the Finder set up, and when a
	// failed Find has undone it.
	Leftovers *Leftovers
}

func (o *Orchestrator) run() Run {
	return Run{Logger: o.Logger, Parallelism: o.Parallelism, CleanupTimeout: o.CleanupTimeout, Leftovers: o.Leftovers}
}

// freshContext is for unlock and cleanup: it ignores the cancellation of the
// run (they must still happen) but is bounded in time.
func (r Run) freshContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.CleanupTimeout)
}

// find finds the deployment through the Finder, then the scripts of every
// job of its instances and their metadata. On failure it releases what was
// set up.
func (o *Orchestrator) find(ctx context.Context, name string) (*Deployment, error) {
	d, err := o.Finder.Find(ctx, o.run(), name)
	if err != nil {
		return nil, err
	}
	for _, inst := range d.Instances {
		inst.scriptTimeout = o.ScriptTimeout
	}
	if err := o.discoverJobs(ctx, d); err != nil {
		cleanupErr := o.cleanup(d)
		o.Leftovers.forget(d)
		return nil, errors.Join(err, cleanupErr)
	}
	sort.Slice(d.Instances, func(i, j int) bool {
		a, b := d.Instances[i], d.Instances[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.Index < b.Index
	})
	d.discovered.Store(true)
	return d, nil
}
