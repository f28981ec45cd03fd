package orchestrator

import (
	"context"
	"sync/atomic"
	"time"
)

// Logger is the subset of the bosh-utils logger the workflows use.
type Logger interface {
	Debug(tag, msg string, args ...interface{})
	Info(tag, msg string, args ...interface{})
	Warn(tag, msg string, args ...interface{})
}

// Orchestrator runs the workflows on the deployments its Finder finds.
type Orchestrator struct {
	// Finder finds a deployment and connects to its instances: through
	// the Director (DirectorFinder), or to the Director VM (Standalone).
	Finder Finder
	Logger Logger
	// Version is passed to metadata scripts as BBR_VERSION.
	Version string
	// Parallelism bounds concurrent remote operations (scripts, copies).
	Parallelism int
	// Now is the clock; tests replace it.
	Now func() time.Time
	// CleanupTimeout bounds each unlock script, and the cleanup, which run
	// on contexts the workflow's cancellation does not reach so that they
	// still run when it was cancelled.
	CleanupTimeout time.Duration
	// ScriptTimeout bounds each bbr script (lock, backup, unlock, restore,
	// metadata); zero means no limit, as upstream.
	ScriptTimeout time.Duration
	// ProgressInterval is how often a backup's drain or a restore's upload
	// reports the bytes copied and the rate; zero means never.
	ProgressInterval time.Duration
	// Meter, when set, shows the copies live instead (a terminal's bars).
	Meter Meter
	// JobCopied, when set, is told how long each job's backup took to
	// copy and check, by the artifact file's name (for reports).
	JobCopied func(file string, took time.Duration)
	// Leftovers, when set, follows what the runs have not yet undone.
	Leftovers *Leftovers
}

// Instance is one VM of the deployment with an open connection.
type Instance struct {
	Group     string
	ID        string
	Index     int
	Bootstrap bool
	Jobs      []*Job

	conn          InstanceConn
	scriptTimeout time.Duration
	// stagingCreated records that /var/vcap/store/bbr-backup may exist
	// on the instance because of this run, so cleanup removes it.
	stagingCreated atomic.Bool
	// cleaned records that cleanup has visited the instance.
	cleaned atomic.Bool
}

// Name is "group/id", the way upstream names instances in logs.
func (i *Instance) Name() string { return i.Group + "/" + i.ID }

// Job is one job on one instance and the bbr scripts it has.
type Job struct {
	Name    string
	Release string
	// Scripts holds the names of the bbr scripts the job ships.
	Scripts  map[string]bool
	Metadata JobMetadata
	// BackupOneRestoreAll is the manifest property bbr.backup_one_restore_all.
	BackupOneRestoreAll bool
	Instance            *Instance
	// locked is set when a lock script starts and cleared when the unlock
	// script succeeds.
	locked atomic.Bool
}

// Has says whether the job ships script.
func (j *Job) Has(script string) bool { return j.Scripts[script] }

// customArtifact reports whether this job's backup is the deployment-wide
// backup-one-restore-all artifact (taken on the bootstrap instance only).
func (j *Job) customArtifact() bool { return j.BackupOneRestoreAll && j.Instance.Bootstrap }

// CustomArtifactName is the name upstream gives a backup-one-restore-all
// artifact.
func (j *Job) CustomArtifactName() string {
	return j.Name + "-" + j.Release + "-backup-one-restore-all"
}

// stagingName is the job's directory under the remote staging root.
func (j *Job) stagingName() string {
	if j.customArtifact() {
		return j.CustomArtifactName()
	}
	return j.Name
}

// StagingDir is where the job's backup script writes and restore reads.
func (j *Job) StagingDir() string { return j.Instance.conn.StagingDir(j.stagingName()) }

// Deployment is a deployment whose instances are connected for this run.
type Deployment struct {
	Name      string
	Instances []*Instance
	// skipped are connected instances bbr leaves alone (Windows); only
	// cleanup visits them.
	skipped []*Instance
	// sshUser is the SSH user made for this run; empty when the run uses
	// the operator's own (director mode).
	sshUser string
	// manifest gives the jobs' releases; nil when there is no manifest
	// (director mode).
	manifest manifestJobs
	// fetchManifest asks for the manifest again, to save it with the
	// backup as it is then; nil when there is none.
	fetchManifest func(context.Context) (string, error)
	// discovered is set once Instances and skipped are final: Leftovers
	// reads them only after, from another goroutine.
	discovered atomic.Bool
}

// Jobs lists every job of every instance, in instance order.
func (d *Deployment) Jobs() []*Job {
	var jobs []*Job
	for _, inst := range d.Instances {
		jobs = append(jobs, inst.Jobs...)
	}
	return jobs
}

// JobsWith lists the jobs that ship script.
func (d *Deployment) JobsWith(script string) []*Job { return withScript(d.Jobs(), script) }
