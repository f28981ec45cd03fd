package orchestrator

import (
	"context"
	"fmt"
)

// Standalone is the Finder of director mode (`bbr director`): one VM, the
// BOSH Director itself, reached straight over SSH with an operator's key.
// There is no Director API to ask, no manifest (so job releases are
// unknown) and no SSH user to remove afterwards. Upstream names the VM
// bosh/0.
type Standalone struct {
	// Name names the artifact (<Name>_<timestamp>): the host without
	// scheme or port.
	Name string
	// Dial opens the connection to the VM.
	Dial func(ctx context.Context) (InstanceConn, error)
}

// Find implements Finder. The deployment is always the VM, named Name:
// the name asked for is not used.
func (s *Standalone) Find(ctx context.Context, run Run, _ string) (*Deployment, error) {
	run.Logger.Info("bbr", "Looking for scripts")
	conn, err := s.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", s.Name, err)
	}
	inst := &Instance{Group: "bosh", ID: "0", Index: 0, Bootstrap: true, conn: conn}
	d := &Deployment{Name: s.Name, Instances: []*Instance{inst}}
	run.Leftovers.watch(d)
	return d, nil
}

// Release implements Finder: the operator's own user stays, so only the
// connection is closed.
func (s *Standalone) Release(_ context.Context, _ Run, _ *Deployment, inst *Instance) error {
	_ = inst.conn.Close() // a connection that fails to close holds nothing on the VM
	return nil
}
