// Package report records how a run went, for machines: a JSON report of
// every deployment a run backed up, and Prometheus metrics in
// node_exporter's textfile format, so monitoring can alert on a failed
// backup, on one too old, or on a long lock window.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Run is one bbr run: a CLI command, an errand.
type Run struct {
	// Kind is what the run does: OpBackup or OpRestore.
	Kind        string       `json:"kind"`
	Command     string       `json:"command"` // e.g. "deployment backup", "errand restore"
	Version     string       `json:"bbr_version"`
	Started     time.Time    `json:"started"`
	Finished    time.Time    `json:"finished"`
	OK          bool         `json:"ok"`
	Deployments []Deployment `json:"deployments"`
	// Errors are the run's own, before any deployment (no Director, no
	// bucket).
	Errors []string `json:"errors,omitempty"`
}

// Deployment is what happened to one deployment (or the Director) in a run.
type Deployment struct {
	Name string `json:"name"`
	// Kind is "deployment" or "director" (or "run"); Operation OpBackup
	// or OpRestore.
	Kind      string `json:"kind"`
	Operation string `json:"operation"`
	// OK is the run's result for it; Good says its backup is good, which
	// it can be while the run failed after it (an unlock).
	OK       bool      `json:"ok"`
	Good     bool      `json:"backup_good"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Seconds is Finished - Started; LockWindowSeconds is from the first
	// lock to the last unlock, as the backup's metadata records it.
	Seconds           float64 `json:"duration_seconds"`
	LockWindowSeconds float64 `json:"lock_window_seconds"`
	// Destination is where the backup was written; Backup its location
	// (a restore's: the backup it restored).
	Destination string `json:"destination,omitempty"`
	Backup      string `json:"backup,omitempty"`
	// Bytes is what the backup stores; Files its files, as stored.
	Bytes  int64    `json:"bytes"`
	Files  []File   `json:"files,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// File is one of a backup's files: an instance's job, a custom artifact.
type File struct {
	Name string `json:"name"` // the plain name, db-0-pg.tar
	// Instance and Job are set for an instance's artifact.
	Instance string `json:"instance,omitempty"` // group/index
	Job      string `json:"job,omitempty"`
	Bytes    int64  `json:"bytes"`       // stored
	Plain    int64  `json:"plain_bytes"` // before compression and encryption
	// Seconds is how long copying it off the instance and checking it
	// took (0 when not known).
	Seconds float64 `json:"copy_seconds"`
}

// WriteJSON writes r to path atomically, 0600: a report holds no secret
// bbr knows of, but its errors quote the last lines of a failed script's
// output, redacted only as well as a pattern can.
func WriteJSON(path string, r Run) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(raw, '\n'))
}

// writeAtomic writes data to path through a temporary file in the same
// directory, so a reader (node_exporter) never sees half a file.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
