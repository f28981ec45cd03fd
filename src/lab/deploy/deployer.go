package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/jobrender"
	"github.com/bbr-release/bbr/src/lab/model"
)

// Deployer starts the deployments `bosh deploy` asks the lab's Director
// for, as `up` starts those on its command line: the Director's
// director.Deployer.
type Deployer struct {
	Lab  model.Lab
	Self string            // the bbr-lab binary, for the instances
	Vars map[string]string // the ((lab_director_*)) values
	// Deployed lists the Director's deployments, for a new one's place in
	// the subnet.
	Deployed func() []model.Deployment
	Log      io.Writer
}

// Deploy plans dir's deployment and starts its instances. A redeploy
// stops the previous instances first and keeps their IDs, addresses and
// /var/vcap/store (the persistent disk); jobs and packages are installed
// anew.
func (d Deployer) Deploy(ctx context.Context, dir string, previous *model.Deployment) (model.Deployment, error) {
	plan, err := d.plan(dir, previous)
	if err != nil {
		return model.Deployment{}, err
	}
	if previous != nil {
		keepIDs(plan, *previous)
		if err := d.stop(ctx, *previous, false); err != nil {
			return model.Deployment{}, err
		}
	}
	deps, err := Start(ctx, []Planned{plan}, d.Log)
	if err != nil {
		return model.Deployment{}, err
	}
	return deps[0], nil
}

// plan lays dir's deployment out and checks all that can fail before an
// instance stops: its name, its variables, its templates.
func (d Deployer) plan(dir string, previous *model.Deployment) (Planned, error) {
	plan, err := Plan(dir, d.Lab.Subnet, d.ordinal(previous), d.Lab.Dir, d.Self)
	if err != nil {
		return Planned{}, err
	}
	if previous != nil && plan.Name != previous.Name {
		return Planned{}, fmt.Errorf("the manifest names deployment %s, not %s", plan.Name, previous.Name)
	}
	ResolveVars([]Planned{plan}, d.Vars)
	if name, ok := unresolvedVariable(plan); ok {
		// The Director asks its config server for every variable left.
		return Planned{}, fmt.Errorf("Failed to find variable '/bbr-lab/%s/%s' from config server: the lab's config server knows only the ((lab_director_*)) variables", plan.Name, name)
	}
	// As the Director renders every template before it touches a VM: a
	// template that raises fails the deploy with the old instances up.
	if err := renderAll(plan); err != nil {
		return Planned{}, err
	}
	return plan, nil
}

// keepIDs gives each planned instance the ID its group and index had in
// the previous deployment, as a redeploy keeps its VMs' IDs.
func keepIDs(plan Planned, previous model.Deployment) {
	for i := range plan.Specs {
		inst := &plan.Specs[i].Instance
		if j := slices.IndexFunc(previous.Instances, func(p model.Instance) bool { return p.Group == inst.Group && p.Index == inst.Index }); j >= 0 {
			inst.ID = previous.Instances[j].ID
		}
	}
}

// Delete stops the deployment's instances and removes them, disks too.
func (d Deployer) Delete(ctx context.Context, dep model.Deployment) error {
	return d.stop(ctx, dep, true)
}

// stop stops every instance; removing also deletes its directory, and
// otherwise only what a new deploy installs again (jobs and packages).
func (d Deployer) stop(ctx context.Context, dep model.Deployment, remove bool) error {
	var errs []error
	for _, inst := range dep.Instances {
		if err := instance.Stop(ctx, inst, d.Log); err != nil {
			errs = append(errs, err)
			continue
		}
		paths := instance.PathsOf(inst)
		if remove {
			errs = append(errs, os.RemoveAll(paths.State))
			continue
		}
		for _, sub := range []string{"jobs", "packages"} {
			errs = append(errs, os.RemoveAll(filepath.Join(paths.Root, sub)))
		}
	}
	return errors.Join(errs...)
}

// ordinal is the deployment's third address octet: a redeploy keeps
// its own, a new deployment takes the next after every other.
func (d Deployer) ordinal(previous *model.Deployment) int {
	if previous != nil && len(previous.Instances) > 0 {
		return thirdOctet(previous.Instances[0].IP)
	}
	next := 1
	for _, dep := range d.Deployed() {
		for _, inst := range dep.Instances {
			next = max(next, thirdOctet(inst.IP)+1)
		}
	}
	return next
}

func thirdOctet(ip string) int {
	parts := strings.Split(ip, ".")
	if len(parts) != 4 {
		return 0
	}
	n, _ := strconv.Atoi(parts[2])
	return n
}

// renderAll renders every release job of the plan into a scratch
// directory, to find a template error before anything stops.
func renderAll(plan Planned) error {
	tmp, err := os.MkdirTemp("", "bbr-lab-render-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for i, spec := range plan.Specs {
		inst := jobrender.For(plan.Name, spec.Instance)
		for name, job := range spec.Jobs {
			if !jobrender.IsJob(job.Source) {
				continue // a lab job: nothing to render
			}
			if err := jobrender.Render(job.Source, filepath.Join(tmp, strconv.Itoa(i), name), inst, job.Properties); err != nil {
				return fmt.Errorf("Rendering templates of job '%s' on %s/%d: %w", name, inst.Group, inst.Index, err)
			}
		}
	}
	return nil
}
