package report

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
)

// Kinds of what a run backs up.
const (
	KindDeployment = "deployment"
	KindDirector   = "director"
	// KindRun is a run that failed before any deployment.
	KindRun = "run"
)

// What a run does.
const (
	OpBackup  = "backup"
	OpRestore = "restore"
)

// Attempt is a deployment's backup record, from its start to now, with
// err.
func Attempt(kind, name string, started, finished time.Time, err error) Deployment {
	return Deployment{Name: name, Kind: kind, Operation: OpBackup, OK: err == nil, Started: started, Finished: finished,
		Seconds: finished.Sub(started).Seconds(), Errors: errorLines(err)}
}

// RestoreAttempt is a deployment's restore record, as Attempt.
func RestoreAttempt(kind, name string, started, finished time.Time, err error) Deployment {
	d := Attempt(kind, name, started, finished, err)
	d.Operation = OpRestore
	return d
}

// RestoredFrom records the backup a restore read: its location and
// what it stores.
func (d *Deployment) RestoredFrom(src artifact.Source) {
	d.Backup = src.Location()
	d.Bytes = 0
	if files, err := src.Files(); err == nil {
		for _, size := range files {
			d.Bytes += size
		}
	}
}

// Describe records the good backup src: its location, lock window, files
// and sizes.
func (d *Deployment) Describe(src artifact.Source) {
	d.Good = true
	meta := src.Metadata()
	d.Backup = src.Location()
	d.LockWindowSeconds = meta.BackupActivity.LockWindow().Seconds()
	add := func(file, instance, job string) {
		f := File{Name: file, Instance: instance, Job: job, Bytes: src.Size(meta.StoredName(file))}
		f.Plain = f.Bytes
		if e, ok := meta.Encodings[file]; ok {
			f.Plain = e.PlainSize
		}
		d.Files = append(d.Files, f)
	}
	for _, inst := range meta.Instances {
		for _, a := range inst.Artifacts {
			add(artifact.InstanceFileName(inst.Name, inst.Index, a.Name), inst.Name+"/"+inst.Index, a.Name)
		}
	}
	for _, a := range meta.CustomArtifacts {
		add(artifact.CustomFileName(a.Name), "", "")
	}
	slices.SortFunc(d.Files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	d.Bytes = 0
	if files, err := src.Files(); err == nil {
		for _, size := range files {
			d.Bytes += size
		}
	}
}

// CopyTimes collects how long each file's copy took (the orchestrator's
// JobCopied); safe for concurrent use.
type CopyTimes struct {
	mu sync.Mutex
	m  map[string]time.Duration
}

// Record notes file's copy time.
func (c *CopyTimes) Record(file string, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]time.Duration{}
	}
	c.m[file] = took
}

// Take returns what was recorded and starts afresh (the next deployment).
func (c *CopyTimes) Take() map[string]time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.m
	c.m = nil
	return m
}

// SetCopyTimes records each file's copy time.
func (d *Deployment) SetCopyTimes(times map[string]time.Duration) {
	for i := range d.Files {
		d.Files[i].Seconds = times[d.Files[i].Name].Seconds()
	}
}

// Recorder collects a run's deployments and rewrites the JSON report
// after each one, so a run that is stopped leaves what it finished. Its
// methods are safe for concurrent use (--all-deployments).
type Recorder struct {
	// Path is the JSON report (none when empty); MetricsDir the textfile
	// directory (none when empty).
	Path, MetricsDir string

	mu  sync.Mutex
	run Run
}

// NewRecorder starts the record of a run doing op (OpBackup, OpRestore).
func NewRecorder(path, metricsDir, op, command, version string, now time.Time) *Recorder {
	r := &Recorder{Path: path, MetricsDir: metricsDir}
	r.run = Run{Kind: op, Command: command, Version: version, Started: now, Finished: now, OK: true, Deployments: []Deployment{}}
	return r
}

// Add records d, rewrites the report and updates d's metrics.
func (r *Recorder) Add(d Deployment) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.run.Deployments = append(r.run.Deployments, d)
	r.run.OK = r.run.OK && d.OK
	r.run.Finished = d.Finished
	var errs []string
	if r.Path != "" {
		if err := WriteJSON(r.Path, r.run); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if r.MetricsDir != "" {
		if err := writeMetrics(r.MetricsDir, d); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return &WriteError{strings.Join(errs, "; ")}
	}
	return nil
}

// Fail records an error of the run itself, before any deployment: in
// the report's own errors, and as a failed attempt in the metrics of
// each of stopped (what the run was to back up, or the run itself), so
// that monitoring counts it and alerts.
func (r *Recorder) Fail(err error, now time.Time, stopped ...Deployment) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.run.OK = false
	r.run.Finished = now
	r.run.Errors = append(r.run.Errors, errorLines(err)...)
	var errs []string
	if r.Path != "" {
		if err := WriteJSON(r.Path, r.run); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, d := range stopped {
		if r.MetricsDir == "" {
			break
		}
		if err := writeMetrics(r.MetricsDir, d); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return &WriteError{strings.Join(errs, "; ")}
	}
	return nil
}

// AllDeployments names the series of a run over every deployment
// (--all-deployments, all_deployments) that failed before it knew them:
// kind run, deployment all-deployments.
const AllDeployments = "all-deployments"

// Reached says the run got through to its deployments: the failure of
// an earlier run before any deployment (the series of kind run) no
// longer stands, and its textfile is removed, so its alert resolves.
func (r *Recorder) Reached() error {
	if r == nil || r.MetricsDir == "" {
		return nil
	}
	err := os.Remove(MetricsFile(r.MetricsDir, KindRun, AllDeployments))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &WriteError{err.Error()}
	}
	return nil
}

// WriteError is a report or metrics file that could not be written: the
// backup itself is not affected.
type WriteError struct{ msg string }

func (e *WriteError) Error() string { return "the run's report could not be written: " + e.msg }

// Run returns a copy of the record so far.
func (r *Recorder) Run() Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.run
	out.Deployments = slices.Clone(r.run.Deployments)
	return out
}
