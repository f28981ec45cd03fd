package artifact

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"time"
)

// Destination is where backups are kept: a local directory (Local) or an
// S3-compatible bucket (package bucket). Both pass the conformance suite
// in package destinationtest, so the orchestrator, retention and the
// errands treat them alike.
//
// A backup is a set of named files (the tars, the metadata, maybe the
// manifest) under a name <deployment>_<UTC timestamp>. It is good only
// once its Writer finished without failure: the completion mark (the
// directory's final name, or the metadata object written last) comes
// after every file is confirmed. Anything else is listed, never opened.
type Destination interface {
	// String names the destination for messages: a path or s3://bucket/prefix.
	String() string
	// Create starts writing the backup named backup (see BackupName).
	Create(ctx context.Context, backup string, start time.Time) (Writer, error)
	// List returns every backup there, in any state, newest first.
	List(ctx context.Context) ([]Stored, error)
	// Open opens a good backup by the name List gave; it refuses a failed
	// or unfinished one, saying why.
	Open(ctx context.Context, name string) (Source, error)
	// Delete removes a backup, whatever its state.
	Delete(ctx context.Context, name string) error
}

// Writer is a backup being written. Its methods are safe for concurrent
// use by parallel drains.
type Writer interface {
	// Location is where the backup is, for messages and reports.
	Location() string
	// WriteTar stores the tar stream r as file, hashing every file in it
	// as it passes, and returns the checksums and the bytes stored.
	WriteTar(file string, r io.Reader) (Checksums, int64, error)
	// Put stores r as file, as it is (a transform's output), and returns
	// the bytes stored.
	Put(file string, r io.Reader) (int64, error)
	// RecordEncoding records in the metadata how file is stored, when it
	// is not plain (see Encoding).
	RecordEncoding(file string, e Encoding) error
	AddInstanceArtifact(group string, index int, job string, sums Checksums) error
	AddCustomArtifact(name string, sums Checksums) error
	RecordLockWindow(locked, unlocked time.Time) error
	SaveManifest(manifest string) error
	// Finish marks the backup good when failure is nil, else failed with
	// the reason; Location may change.
	Finish(now time.Time, failure error) error
}

// Source is a good backup being read.
type Source interface {
	Location() string
	Metadata() Metadata
	// Open streams one of the backup's files.
	Open(ctx context.Context, file string) (io.ReadCloser, error)
	// Size is a file's size, or 0 when it is not known.
	Size(file string) int64
	// Files lists every file stored in the backup, with its size: what
	// the metadata names, and whatever else is there.
	Files() (map[string]int64, error)
}

// State is what a stored backup is good for.
type State int

const (
	// Good backups can be restored.
	Good State = iota
	// Failed backups failed (or are damaged): never restored, and
	// removed by retention once a newer good backup exists.
	Failed
	// Unreadable backups look finished but cannot be read now (an I/O
	// error, a permission): they may be good, so retention keeps them.
	Unreadable
	// InProgress backups have no completion mark yet: still running, or
	// interrupted. Never restored; retention treats them as failed.
	InProgress
)

func (s State) String() string {
	return [...]string{"good", "failed", "unreadable", "in progress"}[s]
}

// Stored is one backup at a destination.
type Stored struct {
	// Name is what Open and Delete take.
	Name       string
	Deployment string
	Time       time.Time
	State      State
	// Why says what is wrong with a backup that is not good.
	Why error
	// Size is the bytes it stores (0 when they cannot be counted).
	Size int64
	// Transforms is what its files are stored with, from its metadata
	// ("none", "zstd+age"; empty when the metadata was not read).
	Transforms string
}

// BackupName is the name of a backup of deployment started at t.
func BackupName(deployment string, t time.Time) string {
	return deployment + "_" + t.UTC().Format(DirTimeFormat)
}

var backupNamePattern = regexp.MustCompile(`^(.+)_(\d{8}T\d{6}Z)$`)

// ParseBackupName splits a backup's name into its deployment and time.
func ParseBackupName(name string) (deployment string, t time.Time, ok bool) {
	m := backupNamePattern.FindStringSubmatch(name)
	if m == nil || !validName(m[1]) {
		return "", time.Time{}, false
	}
	t, err := time.Parse(DirTimeFormat, m[2])
	if err != nil {
		return "", time.Time{}, false
	}
	return m[1], t, true
}

// CheckBackupName refuses a name that is not <deployment>_<timestamp>.
func CheckBackupName(name string) error {
	if _, _, ok := ParseBackupName(name); !ok {
		return fmt.Errorf("%q is not a backup's name: bbr names backups <deployment>_<YYYYMMDDTHHMMSSZ>", name)
	}
	return nil
}

// Newest returns the newest good backup of deployment at dest.
func Newest(ctx context.Context, dest Destination, deployment string) (Stored, error) {
	all, err := List(ctx, dest, deployment)
	if err != nil {
		return Stored{}, err
	}
	for _, b := range all {
		if b.State == Good {
			return b, nil
		}
	}
	return Stored{}, fmt.Errorf("no good backup of %s at %s", deployment, dest)
}

// List returns the backups of one deployment at dest, newest first.
func List(ctx context.Context, dest Destination, deployment string) ([]Stored, error) {
	all, err := dest.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the backups at %s: %w", dest, err)
	}
	var out []Stored
	for _, b := range all {
		if b.Deployment == deployment {
			out = append(out, b)
		}
	}
	return out, nil
}
