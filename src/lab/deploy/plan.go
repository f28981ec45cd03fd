// Package deploy turns deployment directories into running instances: it
// reads a manifest and lays out its instances (IDs, AZs, addresses), fills
// in the lab's ((lab_director_*)) variables, starts and stops every
// instance of a deployment at once, and deploys and deletes for the
// Director (Deployer), as `bbr-lab up` does for those on its command line.
package deploy

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/model"
)

// Layout is shown in `bbr-lab up --help` and src/lab/README.md.
const Layout = `A deployment directory holds:
     manifest.yml                            a v2 BOSH manifest (name, instance_groups with jobs)
     releases/<release>/jobs/<job>/bin/...   the job's scripts: bin/start, bin/stop, bin/bbr/*
   Each job of each instance group is copied to /var/vcap/jobs/<job> on its instances, with
   its manifest properties in config/properties.json. Instance groups with lifecycle: errand
   get no instances. An instance group whose stemcell's os starts with "windows" gets
   instances that answer SSH as a Windows VM would (bbr skips those).`

// manifest is the part of a v2 BOSH manifest the lab reads.
type manifest struct {
	Name           string          `yaml:"name"`
	Stemcells      []stemcell      `yaml:"stemcells"`
	InstanceGroups []instanceGroup `yaml:"instance_groups"`
}

type stemcell struct {
	Alias string `yaml:"alias"`
	OS    string `yaml:"os"`
}

type instanceGroup struct {
	Name      string        `yaml:"name"`
	Instances int           `yaml:"instances"`
	AZs       []string      `yaml:"azs"`
	Lifecycle string        `yaml:"lifecycle"`
	Stemcell  string        `yaml:"stemcell"`
	Jobs      []manifestJob `yaml:"jobs"`
}

type manifestJob struct {
	Name       string         `yaml:"name"`
	Release    string         `yaml:"release"`
	Properties map[string]any `yaml:"properties"`
}

// windows says whether the stemcell alias names a Windows stemcell (os
// windows2019, windows1803, ...): the lab then makes a Windows stand-in.
func (m manifest) windows(alias string) bool {
	for _, s := range m.Stemcells {
		if s.Alias == alias {
			return strings.HasPrefix(s.OS, "windows")
		}
	}
	return false
}

// Planned is a deployment with its instances laid out, ready to start.
type Planned struct {
	model.Deployment
	Specs []instance.Spec
}

// nameRE keeps names from the manifest safe as path elements.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// maxInstancesPerDeployment keeps <subnet>.<n>.<m> inside one octet.
const maxInstancesPerDeployment = 240

// Plan reads dir/manifest.yml and lays out its instances: IDs, bootstrap
// (index 0), AZs round-robin and IPs <subnet>.<ordinal>.<10+k>.
func Plan(dir, subnet string, ordinal int, labDir, labBin string) (Planned, error) {
	var plan Planned
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.yml"))
	if err != nil {
		return plan, fmt.Errorf("reading deployment: %w", err)
	}
	var m manifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return plan, fmt.Errorf("parsing %s: %w", filepath.Join(dir, "manifest.yml"), err)
	}
	if !nameRE.MatchString(m.Name) {
		return plan, fmt.Errorf("%s: deployment name %q is missing or not a plain name", dir, m.Name)
	}
	plan.Name, plan.Manifest = m.Name, string(raw)
	l := layout{m: m, dir: dir, subnet: subnet, ordinal: ordinal, labDir: labDir, labBin: labBin, next: 10}
	for _, g := range m.InstanceGroups {
		specs, err := l.group(g)
		if err != nil {
			return plan, err
		}
		plan.Specs = append(plan.Specs, specs...)
	}
	return plan, nil
}

// layout carries what every instance group of one manifest shares while
// its instances are laid out; next is the next instance's last octet.
type layout struct {
	m                           manifest
	dir, subnet, labDir, labBin string
	ordinal, next               int
}

// group lays out one instance group's instances.
func (l *layout) group(g instanceGroup) ([]instance.Spec, error) {
	if !nameRE.MatchString(g.Name) {
		return nil, fmt.Errorf("deployment %s: instance group name %q is not a plain name", l.m.Name, g.Name)
	}
	// An errand group has no VMs until the errand runs.
	if g.Lifecycle == "errand" {
		return nil, nil
	}
	jobs, names, err := l.jobs(g)
	if err != nil {
		return nil, err
	}
	azs := g.AZs
	if len(azs) == 0 {
		azs = []string{"z1"}
	}
	var specs []instance.Spec
	for i := 0; i < g.Instances; i++ {
		if l.next-10 >= maxInstancesPerDeployment {
			return nil, fmt.Errorf("deployment %s has more than %d instances", l.m.Name, maxInstancesPerDeployment)
		}
		id, err := newUUID()
		if err != nil {
			return nil, err
		}
		inst := model.Instance{
			Group:     g.Name,
			Index:     i,
			ID:        id,
			Bootstrap: i == 0,
			AZ:        azs[i%len(azs)],
			IP:        fmt.Sprintf("%s.%d.%d", l.subnet, l.ordinal, l.next),
			Jobs:      names,
		}
		l.next++
		specs = append(specs, instance.Spec{
			LabDir: l.labDir, Deployment: l.m.Name, Instance: inst, Jobs: jobs, LabBin: l.labBin,
			Windows: l.m.windows(g.Stemcell),
		})
	}
	return specs, nil
}

// jobs finds each job of the group in the deployment directory's
// releases, in manifest order.
func (l *layout) jobs(g instanceGroup) (map[string]instance.Job, []string, error) {
	jobs := map[string]instance.Job{}
	var names []string
	for _, j := range g.Jobs {
		if !nameRE.MatchString(j.Name) || !nameRE.MatchString(j.Release) {
			return nil, nil, fmt.Errorf("deployment %s, group %s: job %q of release %q: names must be plain", l.m.Name, g.Name, j.Name, j.Release)
		}
		src := filepath.Join(l.dir, "releases", j.Release, "jobs", j.Name)
		if st, err := os.Stat(src); err != nil || !st.IsDir() {
			return nil, nil, fmt.Errorf("deployment %s, group %s: job %s: no directory %s", l.m.Name, g.Name, j.Name, src)
		}
		jobs[j.Name] = instance.Job{Source: src, Properties: j.Properties}
		names = append(names, j.Name)
	}
	return jobs, names, nil
}

// CheckSubnet accepts "127.N": instances get 127.N.<deployment>.<k>, so
// they never take 127.0.0.1.
func CheckSubnet(subnet string) error {
	parts := strings.Split(subnet, ".")
	if len(parts) != 2 || parts[0] != "127" {
		return fmt.Errorf("--subnet %q: want two octets inside 127.0.0.0/8, e.g. 127.77", subnet)
	}
	if n, err := strconv.Atoi(parts[1]); err != nil || n < 0 || n > 255 {
		return fmt.Errorf("--subnet %q: second octet must be 0-255", subnet)
	}
	return nil
}

// newUUID returns a random (version 4) UUID, as BOSH instance IDs are.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating an instance ID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
