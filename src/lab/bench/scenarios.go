// Package bench measures bbr against the lab: this bbr, the floor (an
// OpenSSH tar stream plus a sha256 of every file) and, when given, upstream
// bbr, all on the same deployments in one run.
package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Scenario is one deployment the tools back up.
type Scenario struct {
	Key        string // short name in the results
	Title      string
	Deployment string
	Group      string
	Instances  int
	Jobs       int
	SizeMiB    int // per job and instance
	// Restore marks the scenario whose artifacts are also restored.
	Restore bool
	// Floor marks the scenario the OpenSSH baseline runs on.
	Floor bool
	// Bucket marks the scenario also backed up to and restored from a
	// bucket (with --weed).
	Bucket bool
	// LockFloor marks a scale scenario: the lab's own cost of its lock
	// window is measured beside the tools (see lockfloor.go).
	LockFloor bool
}

// TotalMiB is the data one backup copies.
func (s Scenario) TotalMiB() int { return s.Instances * s.Jobs * s.SizeMiB }

// ScaleSizes are the instance counts of the scale scenarios (n10, n50,
// n100): one group of N instances with 1 MiB each, whatever --scale says,
// so that the figures are about the number of instances, not the data.
var ScaleSizes = []int{10, 50, 100}

// Scenarios are the four figures (the fourth is the restore of the
// second) and the scale scenarios.
func Scenarios(scale int) []Scenario {
	all := []Scenario{
		{Key: "s1", Title: "1 instance, one 1 GiB artifact", Deployment: "bench-one", Group: "big", Instances: 1, Jobs: 1, SizeMiB: 1024 / scale, Floor: true, Bucket: true},
		{Key: "s2", Title: "20 instances, 50 MiB each", Deployment: "bench-many", Group: "node", Instances: 20, Jobs: 1, SizeMiB: 50 / scale, Restore: true},
		{Key: "s3", Title: "1 instance, 20 jobs of 10 MiB", Deployment: "bench-jobs", Group: "multi", Instances: 1, Jobs: 20, SizeMiB: max(10/scale, 1)},
	}
	for _, n := range ScaleSizes {
		all = append(all, Scenario{Key: fmt.Sprintf("n%d", n), Title: fmt.Sprintf("%d instances in one group, 1 MiB each", n),
			Deployment: fmt.Sprintf("bench-n%d", n), Group: "node", Instances: n, Jobs: 1, SizeMiB: 1, LockFloor: true})
	}
	return all
}

// Select keeps the scenarios named in keys (comma-separated; s4 is the
// restore of s2, so it selects s2; "scale" is n10, n50 and n100). An empty
// keys keeps all but the scale scenarios: with upstream they would add more
// than half to the run (upstream's n100 alone takes about a minute).
func Select(all []Scenario, keys string) ([]Scenario, error) {
	if keys == "" {
		return slices.DeleteFunc(slices.Clone(all), func(s Scenario) bool { return s.LockFloor }), nil
	}
	var want []string
	for _, k := range strings.Split(keys, ",") {
		switch k = strings.TrimSpace(k); k {
		case "s4":
			want = append(want, "s2")
		case "scale":
			for _, s := range all {
				if s.LockFloor {
					want = append(want, s.Key)
				}
			}
		default:
			want = append(want, k)
		}
	}
	var out []Scenario
	for _, k := range want {
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.Key == k })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q: use s1, s2, s3, s4, n10, n50, n100 or scale", k)
		}
		if !slices.ContainsFunc(out, func(s Scenario) bool { return s.Key == k }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

func jobName(s Scenario, j int) string {
	if s.Jobs == 1 {
		return "blob"
	}
	return fmt.Sprintf("blob-%d", j+1)
}

// WriteDeployment writes a lab deployment directory for s under dir: a
// manifest and one job per data set whose scripts are cheap (a hard link),
// so the figures measure the tools, not the scripts. Each lock, backup and
// unlock script appends a timestamp to bench.log.
func WriteDeployment(dir string, s Scenario) (string, error) {
	root := filepath.Join(dir, s.Deployment)
	var jobs strings.Builder
	for j := 0; j < s.Jobs; j++ {
		name := jobName(s, j)
		fmt.Fprintf(&jobs, "  - name: %s\n    release: bench\n", name)
		if err := writeJob(filepath.Join(root, "releases", "bench", "jobs", name), name, s.SizeMiB); err != nil {
			return "", err
		}
	}
	manifest := fmt.Sprintf(`name: %s
releases: [{name: bench, version: "1"}]
stemcells: [{alias: default, os: ubuntu-jammy, version: latest}]
update: {canaries: 1, max_in_flight: 1, canary_watch_time: 1000, update_watch_time: 1000}
instance_groups:
- name: %s
  instances: %d
  azs: [z1]
  vm_type: default
  stemcell: default
  networks: [{name: default}]
  jobs:
%s`, s.Deployment, s.Group, s.Instances, jobs.String())
	if err := os.WriteFile(filepath.Join(root, "manifest.yml"), []byte(manifest), 0o644); err != nil {
		return "", err
	}
	return root, nil
}

func writeJob(dir, name string, sizeMiB int) error {
	stamp := func(what string) string {
		return fmt.Sprintf("echo \"%s $(date +%%s.%%N)\" >> /var/vcap/sys/log/%s/bench.log\n", what, name)
	}
	scripts := map[string]string{
		// Incompressible data, made once when the instance starts.
		"bin/start": fmt.Sprintf("mkdir -p /var/vcap/store/%[1]s /var/vcap/sys/log/%[1]s\n"+
			"[ -s /var/vcap/store/%[1]s/data ] || head -c %[2]dM /dev/urandom > /var/vcap/store/%[1]s/data\n", name, sizeMiB),
		"bin/bbr/pre-backup-lock":    stamp("lock"),
		"bin/bbr/backup":             stamp("backup-start") + fmt.Sprintf("ln /var/vcap/store/%s/data \"$BBR_ARTIFACT_DIRECTORY/data\"\n", name) + stamp("backup-end"),
		"bin/bbr/post-backup-unlock": stamp("unlock"),
		"bin/bbr/restore":            fmt.Sprintf("ln -f \"$BBR_ARTIFACT_DIRECTORY/data\" /var/vcap/store/%s/data\n", name),
	}
	for rel, body := range scripts {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte("#!/bin/bash\nset -euo pipefail\n"+body), 0o755); err != nil {
			return err
		}
	}
	return nil
}
