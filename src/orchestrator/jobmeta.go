package orchestrator

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v2"

	"github.com/bbr-release/bbr/src/lockorder"
)

// JobMetadata is what a job's metadata script prints (YAML). Unknown keys
// are ignored, as upstream ignores them.
type JobMetadata struct {
	BackupName                  string       `yaml:"backup_name"`
	RestoreName                 string       `yaml:"restore_name"`
	BackupShouldBeLockedBefore  []LockBefore `yaml:"backup_should_be_locked_before"`
	RestoreShouldBeLockedBefore []LockBefore `yaml:"restore_should_be_locked_before"`
	SkipBBRScripts              bool         `yaml:"skip_bbr_scripts"`
}

// LockBefore names a job that must be locked after the one declaring it.
type LockBefore struct {
	JobName string `yaml:"job_name"`
	Release string `yaml:"release"`
}

// MaxJobMetadata bounds a metadata script's output: a few lines in
// practice; anything this big is not metadata.
const MaxJobMetadata = 1 << 20

// ParseJobMetadata parses and validates a metadata script's output.
func ParseJobMetadata(out []byte) (JobMetadata, error) {
	var m JobMetadata
	if len(out) > MaxJobMetadata {
		return m, fmt.Errorf("job metadata is %d bytes, more than the %d a metadata script may print", len(out), MaxJobMetadata)
	}
	if err := yaml.Unmarshal(out, &m); err != nil {
		return m, fmt.Errorf("failed to unmarshal job metadata: %w", err)
	}
	for _, l := range append(append([]LockBefore{}, m.BackupShouldBeLockedBefore...), m.RestoreShouldBeLockedBefore...) {
		if l.JobName == "" || l.Release == "" {
			return m, fmt.Errorf("both job name and release should be specified for should be locked before")
		}
		if !printable(l.JobName) || !printable(l.Release) {
			return m, fmt.Errorf("job metadata names job %q of release %q in should be locked before: names may not hold control characters or invalid UTF-8", l.JobName, l.Release)
		}
	}
	return m, nil
}

// printable says whether s is valid UTF-8 without control characters, so
// it can go into log lines as it is.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

func refs(ls []LockBefore) []lockorder.Ref {
	out := make([]lockorder.Ref, 0, len(ls))
	for _, l := range ls {
		out = append(out, lockorder.Ref{JobName: l.JobName, Release: l.Release})
	}
	return out
}

// lockLayers orders the deployment's jobs for backup or restore locking and
// returns them as layers of jobs.
func lockLayers(jobs []*Job, forRestore bool) ([][]*Job, error) {
	nodes := make([]lockorder.Job, len(jobs))
	for i, j := range jobs {
		before := j.Metadata.BackupShouldBeLockedBefore
		if forRestore {
			before = j.Metadata.RestoreShouldBeLockedBefore
		}
		nodes[i] = lockorder.Job{Name: j.Name, Release: j.Release, LockBefore: refs(before)}
	}
	idx, err := lockorder.Layers(nodes)
	if err != nil {
		return nil, err
	}
	layers := make([][]*Job, len(idx))
	for i, l := range idx {
		for _, k := range l {
			layers[i] = append(layers[i], jobs[k])
		}
	}
	return layers, nil
}

func reverseLayers(layers [][]*Job) [][]*Job {
	out := make([][]*Job, len(layers))
	for i, l := range layers {
		out[len(layers)-1-i] = l
	}
	return out
}
