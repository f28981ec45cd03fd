package orchestrator

import (
	"fmt"

	yaml "go.yaml.in/yaml/v2"
)

// manifestJobs answers what the workflows need from a deployment manifest:
// each job's release and whether it is backup-one-restore-all.
type manifestJobs map[[2]string]manifestJob // key: group, job

type manifestJob struct {
	Release             string
	BackupOneRestoreAll bool
}

type manifestJobYAML struct {
	Name       string `yaml:"name"`
	Release    string `yaml:"release"`
	Properties struct {
		BBR struct {
			BackupOneRestoreAll bool `yaml:"backup_one_restore_all"`
		} `yaml:"bbr"`
	} `yaml:"properties"`
}

type manifestYAML struct {
	// v2 manifests
	InstanceGroups []struct {
		Name string            `yaml:"name"`
		Jobs []manifestJobYAML `yaml:"jobs"`
	} `yaml:"instance_groups"`
	// v1 manifests: jobs are instance groups, templates are jobs.
	Jobs []struct {
		Name      string            `yaml:"name"`
		Templates []manifestJobYAML `yaml:"templates"`
	} `yaml:"jobs"`
}

func parseManifest(raw string) (manifestJobs, error) {
	var m manifestYAML
	if err := yaml.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("error unmarshalling manifest yaml: %w", err)
	}
	jobs := manifestJobs{}
	add := func(group string, js []manifestJobYAML) {
		for _, j := range js {
			jobs[[2]string{group, j.Name}] = manifestJob{Release: j.Release, BackupOneRestoreAll: j.Properties.BBR.BackupOneRestoreAll}
		}
	}
	for _, g := range m.InstanceGroups {
		add(g.Name, g.Jobs)
	}
	for _, g := range m.Jobs {
		add(g.Name, g.Templates)
	}
	return jobs, nil
}
