package orchestrator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/boshname"
)

// find discovers the deployment: its instances, an SSH user on each (one
// Director task per instance group, in parallel), one connection per
// instance, the scripts of every job and their metadata. On failure it
// undoes what it set up.
func (o *Orchestrator) find(ctx context.Context, name string) (*Deployment, error) {
	if o.Standalone != nil {
		return o.findStandalone(ctx)
	}
	if err := boshname.Check("deployment", name); err != nil {
		return nil, err
	}
	o.Logger.Info("bbr", "Looking for scripts")
	vms, err := o.Director.VMs(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(vms) == 0 {
		return nil, fmt.Errorf("deployment '%s' has no instances", name)
	}
	if err := checkVMNames(vms); err != nil {
		return nil, fmt.Errorf("deployment '%s': %w", name, err)
	}
	rawManifest, err := o.Director.Manifest(ctx, name)
	if err != nil {
		return nil, err
	}
	manifest, err := parseManifest(rawManifest)
	if err != nil {
		return nil, err
	}

	user, signer, err := newSSHIdentity()
	if err != nil {
		return nil, err
	}
	d := &Deployment{Name: name, sshUser: user}
	o.Leftovers.watch(d) // from here the Director may have made the user
	groups := uniqueGroups(vms)
	hosts, err := o.setUpSSH(ctx, name, vms, groups, user, signer)
	if err != nil {
		// A failed or abandoned set-up may still have made the user on
		// any group it was asked for (the Director's tasks run on): remove
		// it by name from every one of them.
		cleanupErr := o.cleanUpGroups(d, groups)
		if errors.Is(err, ErrSetUpUnfinished) {
			// The task may make the user after that cleanup.
			for _, g := range groups {
				cleanupErr = errors.Join(cleanupErr, cleanupError(userLeft(d.Name, user, g, ErrSetUpUnfinished)))
			}
		}
		o.Leftovers.forget(d)
		return nil, errors.Join(err, cleanupErr)
	}
	d.Instances, err = o.connect(ctx, hosts, user, signer)
	if err == nil {
		err = o.discoverJobs(ctx, d, manifest)
	}
	if err != nil {
		cctx, cancel := o.freshContext()
		defer cancel()
		cleanupErr := o.cleanupInstances(cctx, d, hostsWithoutConnection(hosts, d.Instances))
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

// newSSHIdentity makes the ephemeral user name (bosh_ + 15 hex, as bosh-cli
// does, short enough for Windows) and a key pair used for this run only.
func newSSHIdentity() (string, ssh.Signer, error) {
	buf := make([]byte, 8)
	if _, err := rand.Read(buf); err != nil {
		return "", nil, fmt.Errorf("generating ssh user name: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("generating ssh key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return "", nil, fmt.Errorf("generating ssh key: %w", err)
	}
	return "bosh_" + hex.EncodeToString(buf)[:15], signer, nil
}

type sshTarget struct {
	host SSHHost
	vm   VM
}

// setUpSSH asks the Director for the user on every group, in parallel,
// and checks it set up every instance of each.
func (o *Orchestrator) setUpSSH(ctx context.Context, deployment string, vms []VM, groups []string, user string, signer ssh.Signer) ([]sshTarget, error) {
	pub := string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	var mu sync.Mutex
	var targets []sshTarget
	err := forEach(groups, o.Parallelism, func(group string) error {
		hosts, err := o.Director.SetUpSSH(ctx, deployment, group, user, pub)
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
// returned, also with an error, so that they can be cleaned up.
func (o *Orchestrator) connect(ctx context.Context, targets []sshTarget, user string, signer ssh.Signer) ([]*Instance, error) {
	var mu sync.Mutex
	var instances []*Instance
	err := forEach(targets, o.Parallelism, func(t sshTarget) error {
		conn, err := o.Dial(ctx, t.host, user, signer)
		if err != nil {
			return fmt.Errorf("connecting to %s/%s: %w", t.vm.Group, t.vm.ID, err)
		}
		mu.Lock()
		defer mu.Unlock()
		instances = append(instances, &Instance{Group: t.vm.Group, ID: t.vm.ID, Index: t.vm.Index, Bootstrap: t.vm.Bootstrap, conn: conn, scriptTimeout: o.ScriptTimeout})
		return nil
	})
	return instances, err
}

// discoverJobs finds each instance's scripts and runs the metadata scripts.
// Windows instances are set aside with a warning, as upstream does: bbr's
// scripts are shell scripts, and a Windows VM cannot run them.
func (o *Orchestrator) discoverJobs(ctx context.Context, d *Deployment, manifest manifestJobs) error {
	var mu sync.Mutex
	var windows []*Instance
	err := forEach(d.Instances, o.Parallelism, func(inst *Instance) error {
		isWin, err := inst.conn.IsWindows(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", inst.Name(), err)
		}
		if isWin {
			o.Logger.Warn("bbr", "skipping Windows instance %s", inst.Name())
			mu.Lock()
			windows = append(windows, inst)
			mu.Unlock()
			return nil
		}
		scripts, err := inst.conn.FindScripts(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", inst.Name(), err)
		}
		for _, jobName := range slices.Sorted(maps.Keys(scripts)) {
			job := &Job{Name: jobName, Scripts: scripts[jobName], Instance: inst}
			if mj, ok := manifest[[2]string{inst.Group, jobName}]; ok {
				if err := boshname.Check("release", mj.Release); mj.Release != "" && err != nil {
					return fmt.Errorf("job %s on %s in the manifest: %w", jobName, inst.Name(), err)
				}
				job.Release = mj.Release
				job.BackupOneRestoreAll = mj.BackupOneRestoreAll
			} else if manifest != nil {
				o.Logger.Warn("bbr", "could not find release name for job %s", jobName)
			}
			if err := o.readJobMetadata(ctx, job); err != nil {
				return err
			}
			if job.Metadata.SkipBBRScripts {
				continue
			}
			for _, s := range slices.Sorted(maps.Keys(job.Scripts)) {
				o.Logger.Info("bbr", "%s/%s/%s", inst.Name(), jobName, s)
			}
			inst.Jobs = append(inst.Jobs, job)
		}
		return nil
	})
	d.Instances, d.skipped = without(d.Instances, windows), windows
	return err
}

// without returns all but the given instances, in order.
func without(all, drop []*Instance) []*Instance {
	var out []*Instance
	for _, inst := range all {
		if !slices.Contains(drop, inst) {
			out = append(out, inst)
		}
	}
	return out
}

func (o *Orchestrator) readJobMetadata(ctx context.Context, job *Job) error {
	if !job.Has(ScriptMetadata) {
		return nil
	}
	var out bytes.Buffer
	if err := runScript(ctx, job, ScriptMetadata, map[string]string{"BBR_VERSION": o.Version}, &out); err != nil {
		return fmt.Errorf("running metadata script of job %s on %s: %w", job.Name, job.Instance.Name(), err)
	}
	meta, err := ParseJobMetadata(out.Bytes())
	if err != nil {
		return fmt.Errorf("job %s on %s: %w", job.Name, job.Instance.Name(), err)
	}
	if o.Standalone != nil {
		meta.BackupShouldBeLockedBefore = omitReleases(meta.BackupShouldBeLockedBefore)
		meta.RestoreShouldBeLockedBefore = omitReleases(meta.RestoreShouldBeLockedBefore)
	}
	for _, l := range meta.BackupShouldBeLockedBefore {
		o.Logger.Info("bbr", "Detected order: %s should be locked before %s/%s during backup", job.Name, l.Release, l.JobName)
	}
	for _, l := range meta.RestoreShouldBeLockedBefore {
		o.Logger.Info("bbr", "Detected order: %s should be locked before %s/%s during restore", job.Name, l.Release, l.JobName)
	}
	if meta.BackupName != "" || meta.RestoreName != "" {
		o.Logger.Warn("bbr", "discontinued metadata keys backup_name/restore_name found in job %s. bbr will not be able to restore this backup artifact.", job.Name)
	}
	job.Metadata = meta
	return nil
}

// cleanup removes what the run left on the instances: the staging
// directory where it may exist, the connection and the SSH user. It runs
// on every instance even if some fail.
func (o *Orchestrator) cleanup(d *Deployment) error {
	ctx, cancel := o.freshContext()
	defer cancel()
	return o.cleanupInstances(ctx, d, nil)
}

func (o *Orchestrator) cleanupInstances(ctx context.Context, d *Deployment, unconnected []SSHHost) error {
	all := append(slices.Clone(d.Instances), d.skipped...)
	errs := []error{forEach(all, o.Parallelism, func(inst *Instance) (err error) {
		defer func() { inst.cleaned.Store(err == nil) }()
		if inst.stagingCreated.Load() {
			if rmErr := inst.conn.RemoveStaging(ctx); rmErr != nil {
				err = fmt.Errorf("removing %s on %s: %w", inst.conn.StagingRoot(), inst.Name(), rmErr)
			}
		}
		inst.conn.Close()
		if d.sshUser == "" {
			return err // director mode: the operator's own user stays
		}
		return errors.Join(err, o.cleanUpSSH(ctx, d, inst.Group, inst.ID))
	})}
	for _, h := range unconnected {
		errs = append(errs, o.cleanUpSSH(ctx, d, h.Group, h.IndexOrID))
	}
	return cleanupError(errors.Join(errs...))
}

// cleanUpGroups removes the run's SSH user from every instance of the
// groups, on a fresh context.
func (o *Orchestrator) cleanUpGroups(d *Deployment, groups []string) error {
	ctx, cancel := o.freshContext()
	defer cancel()
	return cleanupError(forEach(groups, o.Parallelism, func(group string) error {
		return o.cleanUpSSH(ctx, d, group, "")
	}))
}

// cleanUpSSH asks the Director to remove the run's SSH user from one
// instance (every instance of the group when id is ""). A cleanup the Director has not finished when bbr stops
// waiting is a warning, not a failure: it is queued and runs later.
func (o *Orchestrator) cleanUpSSH(ctx context.Context, d *Deployment, group, id string) error {
	err := o.Director.CleanUpSSH(ctx, d.Name, group, id, d.sshUser)
	if errors.Is(err, ErrCleanupUnconfirmed) {
		o.Logger.Warn("bbr", "%v", err)
		return nil
	}
	if err != nil {
		where := group
		if id != "" {
			where += "/" + id
		}
		return userLeft(d.Name, d.sshUser, where, err)
	}
	return nil
}

// userLeft says which SSH user a failed Director cleanup may have left,
// and where: backup-cleanup makes and removes a user of its own, so the
// operator needs the name to remove this one.
func userLeft(deployment, user, instance string, err error) error {
	return fmt.Errorf("SSH user %s may be left on %s (the Director did not remove it; remove it with `bosh -d %s ssh %s -c 'sudo userdel -r %s'` or recreate the instance): %w",
		user, instance, deployment, instance, user, err)
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
