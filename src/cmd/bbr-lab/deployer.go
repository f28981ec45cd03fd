package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/jobrender"
	"github.com/bbr-release/bbr/src/lab/model"
)

// deployer starts the deployments `bosh deploy` asks the lab's Director
// for, as `up` starts those on its command line: the Director's
// director.Deployer.
type deployer struct {
	lab  model.Lab
	self string
	vars map[string]string // the ((lab_director_*)) values
	// deployed lists the Director's deployments, for a new one's place in
	// the subnet.
	deployed func() []model.Deployment
	log      io.Writer
}

// Deploy plans dir's deployment and starts its instances. A redeploy
// stops the previous instances first and keeps their IDs, addresses and
// /var/vcap/store (the persistent disk); jobs and packages are installed
// anew.
func (d deployer) Deploy(ctx context.Context, dir string, previous *model.Deployment) (model.Deployment, error) {
	ordinal := d.ordinal(previous)
	plan, err := planDeployment(dir, d.lab.Subnet, ordinal, d.lab.Dir, d.self)
	if err != nil {
		return model.Deployment{}, err
	}
	if previous != nil && plan.Name != previous.Name {
		return model.Deployment{}, fmt.Errorf("the manifest names deployment %s, not %s", plan.Name, previous.Name)
	}
	labVariables([]plannedDeployment{plan}, d.vars)
	if name, ok := unresolvedVariable(plan); ok {
		// The Director asks its config server for every variable left.
		return model.Deployment{}, fmt.Errorf("Failed to find variable '/bbr-lab/%s/%s' from config server: the lab's config server knows only the ((lab_director_*)) variables", plan.Name, name)
	}
	// As the Director renders every template before it touches a VM: a
	// template that raises fails the deploy with the old instances up.
	if err := renderAll(plan); err != nil {
		return model.Deployment{}, err
	}
	if previous != nil {
		for i := range plan.Specs {
			inst := &plan.Specs[i].Instance
			if j := slices.IndexFunc(previous.Instances, func(p model.Instance) bool { return p.Group == inst.Group && p.Index == inst.Index }); j >= 0 {
				inst.ID = previous.Instances[j].ID
			}
		}
		if err := d.stop(ctx, *previous, false); err != nil {
			return model.Deployment{}, err
		}
	}
	deps, err := startInstances(ctx, []plannedDeployment{plan}, d.log)
	if err != nil {
		return model.Deployment{}, err
	}
	return deps[0], nil
}

// Delete stops the deployment's instances and removes them, disks too.
func (d deployer) Delete(ctx context.Context, dep model.Deployment) error {
	return d.stop(ctx, dep, true)
}

// stop stops every instance; removing also deletes its directory, and
// otherwise only what a new deploy installs again (jobs and packages).
func (d deployer) stop(ctx context.Context, dep model.Deployment, remove bool) error {
	var errs []error
	for _, inst := range dep.Instances {
		if err := instance.Stop(ctx, inst, d.log); err != nil {
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
func (d deployer) ordinal(previous *model.Deployment) int {
	third := func(ip string) int {
		parts := strings.Split(ip, ".")
		if len(parts) != 4 {
			return 0
		}
		n, _ := strconv.Atoi(parts[2])
		return n
	}
	if previous != nil && len(previous.Instances) > 0 {
		return third(previous.Instances[0].IP)
	}
	next := 1
	for _, dep := range d.deployed() {
		for _, inst := range dep.Instances {
			next = max(next, third(inst.IP)+1)
		}
	}
	return next
}

var variableRE = regexp.MustCompile(`\(\(\s*!?([A-Za-z0-9_./:-]+)\s*\)\)`)

// unresolvedVariable finds a ((variable)) left in the plan's job
// properties once the lab's own are resolved.
func unresolvedVariable(plan plannedDeployment) (name string, found bool) {
	eachProperty([]plannedDeployment{plan}, func(v string) string {
		if m := variableRE.FindStringSubmatch(v); m != nil && !found {
			name, found = m[1], true
		}
		return v
	})
	return name, found
}

// renderAll renders every release job of the plan into a scratch
// directory, to find a template error before anything stops.
func renderAll(plan plannedDeployment) error {
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
