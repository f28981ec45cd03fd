package orchestrator

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/bbr-release/bbr/src/boshname"
)

// discoverJobs finds each instance's scripts and runs the metadata scripts.
// Windows instances are set aside with a warning, as upstream does: bbr's
// scripts are shell scripts, and a Windows VM cannot run them.
func (o *Orchestrator) discoverJobs(ctx context.Context, d *Deployment) error {
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
		return o.discoverInstanceJobs(ctx, inst, d.manifest)
	})
	d.Instances, d.skipped = without(d.Instances, windows), windows
	return err
}

// discoverInstanceJobs adds the instance's jobs, with their releases from
// the manifest (nil when there is none: director mode).
func (o *Orchestrator) discoverInstanceJobs(ctx context.Context, inst *Instance, manifest manifestJobs) error {
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
		if err := o.readJobMetadata(ctx, job, manifest != nil); err != nil {
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

// readJobMetadata runs the job's metadata script. Without a manifest
// (releasesKnown false) the releases are dropped from its lock order.
func (o *Orchestrator) readJobMetadata(ctx context.Context, job *Job, releasesKnown bool) error {
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
	if !releasesKnown {
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

// omitReleases drops the releases from lock-ordering metadata, as upstream
// does in director mode: without a manifest no job's release is known, so
// jobs are matched by name alone.
func omitReleases(ls []LockBefore) []LockBefore {
	out := make([]LockBefore, 0, len(ls))
	for _, l := range ls {
		out = append(out, LockBefore{JobName: l.JobName})
	}
	return out
}
