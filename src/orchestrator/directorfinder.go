package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/boshname"
)

// Director is what finding a deployment needs from the BOSH Director.
type Director interface {
	VMs(ctx context.Context, deployment string) ([]VM, error)
	Manifest(ctx context.Context, deployment string) (string, error)
	SetUpSSH(ctx context.Context, deployment, group, user, publicKey string) ([]SSHHost, error)
	CleanUpSSH(ctx context.Context, deployment, group, id, user string) error
}

// VM is one instance of a deployment, as the Director lists it.
type VM struct {
	Group     string
	ID        string
	Index     int
	Bootstrap bool
	IPs       []string
}

// SSHHost is one instance on which an SSH user was set up.
type SSHHost struct {
	Group string
	// IndexOrID is what the Director returned to identify the instance
	// (the instance ID on current Directors).
	IndexOrID     string
	IP            string
	HostPublicKey string
}

// Dialer connects to an instance as user, pinning the host key the
// Director returned.
type Dialer func(ctx context.Context, host SSHHost, user string, key ssh.Signer) (InstanceConn, error)

// DirectorFinder is the Finder of `bbr deployment` and the errands: the
// Director lists the deployment's instances and its manifest, sets up one
// SSH user for the run on every instance (a Director task per instance
// group, in parallel), and bbr connects to each with a key made for the
// run. Release removes that user again, through the Director.
type DirectorFinder struct {
	Director Director
	Dial     Dialer
}

// Find implements Finder.
func (f DirectorFinder) Find(ctx context.Context, run Run, name string) (*Deployment, error) {
	if err := boshname.Check("deployment", name); err != nil {
		return nil, err
	}
	run.Logger.Info("bbr", "Looking for scripts")
	vms, manifest, err := f.list(ctx, name)
	if err != nil {
		return nil, err
	}
	user, signer, err := newSSHIdentity()
	if err != nil {
		return nil, err
	}
	d := &Deployment{Name: name, sshUser: user, manifest: manifest, fetchManifest: func(ctx context.Context) (string, error) {
		return f.Director.Manifest(ctx, name)
	}}
	run.Leftovers.watch(d) // from here the Director may have made the user
	groups := uniqueGroups(vms)
	targets, err := f.setUpSSH(ctx, run, name, vms, groups, user, signer)
	if err != nil {
		return nil, f.abandonSetUp(run, d, groups, err)
	}
	d.Instances, err = f.connect(ctx, run, targets, user, signer)
	if err != nil {
		cctx, cancel := run.freshContext()
		defer cancel()
		cleanupErr := f.releaseConnected(cctx, run, d, hostsWithoutConnection(targets, d.Instances))
		run.Leftovers.forget(d)
		return nil, errors.Join(err, cleanupErr)
	}
	return d, nil
}

// Release implements Finder: it closes the connection and asks the
// Director to remove the run's SSH user from the instance.
func (f DirectorFinder) Release(ctx context.Context, run Run, d *Deployment, inst *Instance) error {
	_ = inst.conn.Close() // a connection that fails to close holds nothing on the VM
	return f.cleanUpSSH(ctx, run, d, inst.Group, inst.ID)
}

// list asks the Director for the deployment's VMs and manifest, refusing
// names BOSH would not make.
func (f DirectorFinder) list(ctx context.Context, name string) ([]VM, manifestJobs, error) {
	vms, err := f.Director.VMs(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if len(vms) == 0 {
		return nil, nil, fmt.Errorf("deployment '%s' has no instances", name)
	}
	if err := checkVMNames(vms); err != nil {
		return nil, nil, fmt.Errorf("deployment '%s': %w", name, err)
	}
	rawManifest, err := f.Director.Manifest(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	manifest, err := parseManifest(rawManifest)
	if err != nil {
		return nil, nil, err
	}
	return vms, manifest, nil
}

// checkVMNames refuses instance groups and IDs BOSH would not make: they
// become artifact file names and SSH set-up requests.
func checkVMNames(vms []VM) error {
	for _, vm := range vms {
		if err := boshname.Check("instance group", vm.Group); err != nil {
			return err
		}
		if err := boshname.CheckID(vm.ID); err != nil {
			return err
		}
	}
	return nil
}

type sshTarget struct {
	host SSHHost
	vm   VM
}

// setUpSSH asks the Director for the user on every group, in parallel,
// and checks it set up every instance of each.
func (f DirectorFinder) setUpSSH(ctx context.Context, run Run, deployment string, vms []VM, groups []string, user string, signer ssh.Signer) ([]sshTarget, error) {
	pub := string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	var mu sync.Mutex
	var targets []sshTarget
	err := forEach(groups, run.Parallelism, func(group string) error {
		hosts, err := f.Director.SetUpSSH(ctx, deployment, group, user, pub)
		if err != nil {
			return err
		}
		if n := countGroup(vms, group); len(hosts) < n {
			return fmt.Errorf("the Director set up ssh on %d of the %d instances of %s", len(hosts), n, group)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, h := range hosts {
			vm, ok := matchVM(vms, h)
			if !ok {
				return fmt.Errorf("the Director set up ssh on %s/%s, which is not among the deployment's instances", h.Group, h.IndexOrID)
			}
			targets = append(targets, sshTarget{host: h, vm: vm})
		}
		return nil
	})
	return targets, err
}

func matchVM(vms []VM, h SSHHost) (VM, bool) {
	for _, vm := range vms {
		if vm.Group == h.Group && (vm.ID == h.IndexOrID || fmt.Sprint(vm.Index) == h.IndexOrID) {
			return vm, true
		}
	}
	return VM{}, false
}

// connect dials every host in parallel. The instances that did connect are
// returned, also with an error, so that they can be released.
func (f DirectorFinder) connect(ctx context.Context, run Run, targets []sshTarget, user string, signer ssh.Signer) ([]*Instance, error) {
	var mu sync.Mutex
	var instances []*Instance
	err := forEach(targets, run.Parallelism, func(t sshTarget) error {
		conn, err := f.Dial(ctx, t.host, user, signer)
		if err != nil {
			return fmt.Errorf("connecting to %s/%s: %w", t.vm.Group, t.vm.ID, err)
		}
		mu.Lock()
		defer mu.Unlock()
		instances = append(instances, &Instance{Group: t.vm.Group, ID: t.vm.ID, Index: t.vm.Index, Bootstrap: t.vm.Bootstrap, conn: conn})
		return nil
	})
	return instances, err
}

// releaseConnected releases the instances a failed connect reached, and
// removes the user from those it did not.
func (f DirectorFinder) releaseConnected(ctx context.Context, run Run, d *Deployment, unconnected []SSHHost) error {
	errs := []error{forEach(d.Instances, run.Parallelism, func(inst *Instance) error {
		return f.Release(ctx, run, d, inst)
	})}
	for _, h := range unconnected {
		errs = append(errs, f.cleanUpSSH(ctx, run, d, h.Group, h.IndexOrID))
	}
	return cleanupError(errors.Join(errs...))
}

func hostsWithoutConnection(targets []sshTarget, connected []*Instance) []SSHHost {
	var out []SSHHost
	for _, t := range targets {
		found := false
		for _, inst := range connected {
			if inst.ID == t.vm.ID && inst.Group == t.vm.Group {
				found = true
			}
		}
		if !found {
			out = append(out, t.host)
		}
	}
	return out
}

// countGroup counts the group's instances: during a create-swap-delete
// update the Director lists two VMs for one instance.
func countGroup(vms []VM, group string) int {
	ids := map[string]bool{}
	for _, vm := range vms {
		if vm.Group == group {
			ids[vm.ID] = true
		}
	}
	return len(ids)
}

func uniqueGroups(vms []VM) []string {
	seen := map[string]bool{}
	var groups []string
	for _, vm := range vms {
		if !seen[vm.Group] {
			seen[vm.Group] = true
			groups = append(groups, vm.Group)
		}
	}
	return groups
}
