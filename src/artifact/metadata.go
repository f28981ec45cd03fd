// Package artifact is the local backup artifact: a directory holding one tar
// per job and instance, a YAML metadata file with a sha256 per file, and
// optionally the deployment manifest. The layout and the metadata format are
// upstream bbr's, byte for byte, so artifacts move freely between the tools.
package artifact

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v2"
)

const (
	// MetadataFile is the name of the metadata file in an artifact.
	MetadataFile = "metadata"
	// ManifestFile holds the deployment manifest (--with-manifest).
	ManifestFile = "manifest.yml"
	// TimeFormat is the format of backup_activity times (local time zone).
	TimeFormat = "2006/01/02 15:04:05 MST"
	// LockTimeFormat is for the lock window keys, which are ours (upstream
	// ignores them): milliseconds, since a lock window is often shorter
	// than a second.
	LockTimeFormat = "2006-01-02T15:04:05.000Z07:00"
	// DirTimeFormat is the UTC timestamp suffix of an artifact directory.
	DirTimeFormat = "20060102T150405Z"
)

// Checksums maps a file's path in the tar ("./a/b") to its sha256 in hex.
type Checksums map[string]string

// Metadata is the content of the artifact's metadata file.
type Metadata struct {
	Instances       []InstanceMetadata `yaml:"instances,omitempty"`
	CustomArtifacts []ArtifactMetadata `yaml:"custom_artifacts,omitempty"`
	BackupActivity  Activity           `yaml:"backup_activity"`
	// Encodings (ours; upstream ignores the key) say how the files that
	// are not stored plain are stored, by the plain file's name.
	Encodings map[string]Encoding `yaml:"encodings,omitempty"`
}

// InstanceMetadata lists the artifacts of one instance. Index is a string,
// as upstream writes it.
type InstanceMetadata struct {
	Name      string             `yaml:"name"`
	Index     string             `yaml:"index"`
	Artifacts []ArtifactMetadata `yaml:"artifacts"`
}

// ArtifactMetadata is one job's (or one custom) artifact.
type ArtifactMetadata struct {
	Name      string    `yaml:"name"`
	Checksums Checksums `yaml:"checksums"`
}

// Activity records when the backup started and finished, and (our
// addition, ignored by upstream's decoder) the lock window: from the first
// pre-backup-lock start to the last post-backup-unlock end.
type Activity struct {
	StartTime        string `yaml:"start_time"`
	FinishTime       string `yaml:"finish_time,omitempty"`
	LockStartTime    string `yaml:"lock_start_time,omitempty"`
	UnlockFinishTime string `yaml:"unlock_finish_time,omitempty"`
}

// ParseMetadata parses and validates metadata read from a file.
func ParseMetadata(raw []byte) (Metadata, error) {
	var m Metadata
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("parsing artifact metadata: %w", err)
	}
	return m, m.validate()
}

// Check refuses metadata that would not read back (ParseMetadata's
// rules): a backup is marked good only with metadata that opens.
func (m Metadata) Check() error { return m.validate() }

func (m Metadata) validate() error {
	seen := map[string]bool{}
	check := func(file string, a ArtifactMetadata) error {
		if seen[file] {
			return fmt.Errorf("artifact metadata lists %s twice", file)
		}
		seen[file] = true
		for path, sum := range a.Checksums {
			if !validEntryName(path) {
				return fmt.Errorf("artifact metadata of %s has an invalid file path %q", file, path)
			}
			if !IsSHA256Hex(sum) {
				return fmt.Errorf("artifact metadata of %s has an invalid sha256 %q for %s", file, sum, path)
			}
		}
		return nil
	}
	for _, inst := range m.Instances {
		if !validName(inst.Name) || !validIndex(inst.Index) {
			return fmt.Errorf("artifact metadata has an invalid instance %q index %q", inst.Name, inst.Index)
		}
		for _, a := range inst.Artifacts {
			if !validName(a.Name) {
				return fmt.Errorf("artifact metadata of instance %s/%s has an invalid job name %q", inst.Name, inst.Index, a.Name)
			}
			if err := check(InstanceFileName(inst.Name, inst.Index, a.Name), a); err != nil {
				return err
			}
		}
	}
	for _, a := range m.CustomArtifacts {
		if !validName(a.Name) {
			return fmt.Errorf("artifact metadata has an invalid custom artifact name %q", a.Name)
		}
		if err := check(CustomFileName(a.Name), a); err != nil {
			return err
		}
	}
	return m.validateEncodings()
}

// Marshal renders the metadata as upstream does (yaml.v2 layout, instances
// sorted by group and index so the file is stable). It sorts a copy: the
// caller's slice (which Dir.Metadata shares with readers) is left alone.
func (m Metadata) Marshal() ([]byte, error) {
	m.Instances = append([]InstanceMetadata(nil), m.Instances...)
	sort.SliceStable(m.Instances, func(i, j int) bool {
		a, b := m.Instances[i], m.Instances[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return indexLess(a.Index, b.Index)
	})
	return yaml.Marshal(m)
}

// LockTimes are the recorded start of locking and end of unlocking; ok
// is false when they were not recorded.
func (a Activity) LockTimes() (locked, unlocked time.Time, ok bool) {
	locked, err1 := time.Parse(LockTimeFormat, a.LockStartTime)
	unlocked, err2 := time.Parse(LockTimeFormat, a.UnlockFinishTime)
	return locked, unlocked, err1 == nil && err2 == nil
}

// LockWindow is the recorded lock window, or 0 when none was recorded.
func (a Activity) LockWindow() time.Duration {
	locked, unlocked, ok := a.LockTimes()
	if !ok {
		return 0
	}
	return unlocked.Sub(locked)
}

// NewMetadata is a backup's metadata at its start.
func NewMetadata(start time.Time) Metadata {
	return Metadata{BackupActivity: Activity{StartTime: start.Format(TimeFormat)}}
}

// AddInstanceArtifact records a job's artifact on an instance.
func (m *Metadata) AddInstanceArtifact(group string, index int, job string, sums Checksums) {
	idx := strconv.Itoa(index)
	a := ArtifactMetadata{Name: job, Checksums: sums}
	for i := range m.Instances {
		if m.Instances[i].Name == group && m.Instances[i].Index == idx {
			m.Instances[i].Artifacts = append(m.Instances[i].Artifacts, a)
			return
		}
	}
	m.Instances = append(m.Instances, InstanceMetadata{Name: group, Index: idx, Artifacts: []ArtifactMetadata{a}})
}

// AddCustomArtifact records a custom artifact.
func (m *Metadata) AddCustomArtifact(name string, sums Checksums) {
	m.CustomArtifacts = append(m.CustomArtifacts, ArtifactMetadata{Name: name, Checksums: sums})
}

// SetLockWindow records when locking started and unlocking finished.
func (m *Metadata) SetLockWindow(locked, unlocked time.Time) {
	m.BackupActivity.LockStartTime = locked.UTC().Format(LockTimeFormat)
	m.BackupActivity.UnlockFinishTime = unlocked.UTC().Format(LockTimeFormat)
}

// SetEncoding records how file is stored.
func (m *Metadata) SetEncoding(file string, e Encoding) {
	if m.Encodings == nil {
		m.Encodings = map[string]Encoding{}
	}
	m.Encodings[file] = e
}

// SetFinishTime records when the backup finished.
func (m *Metadata) SetFinishTime(now time.Time) {
	m.BackupActivity.FinishTime = now.Format(TimeFormat)
}

// InstanceFileName is the tar name of a job's artifact on an instance.
func InstanceFileName(group, index, job string) string {
	return fmt.Sprintf("%s-%s-%s.tar", group, index, job)
}

// CustomFileName is the tar name of a custom (backup-one-restore-all) artifact.
func CustomFileName(name string) string { return name + ".tar" }

// Files lists every tar the metadata names, with its checksums.
func (m Metadata) Files() map[string]Checksums {
	files := map[string]Checksums{}
	for _, inst := range m.Instances {
		for _, a := range inst.Artifacts {
			files[InstanceFileName(inst.Name, inst.Index, a.Name)] = a.Checksums
		}
	}
	for _, a := range m.CustomArtifacts {
		files[CustomFileName(a.Name)] = a.Checksums
	}
	return files
}

// errNoMetadata is a directory without a metadata file.
var errNoMetadata = errors.New("it has no metadata file")

func readMetadata(dir string) (Metadata, error) {
	raw, err := readRegular(filepath.Join(dir, MetadataFile), MaxMetadataSize)
	if errors.Is(err, fs.ErrNotExist) {
		return Metadata{}, fmt.Errorf("%s is not a bbr backup: %w (give the <deployment>_<timestamp> directory a backup created)", dir, errNoMetadata)
	}
	if err != nil {
		return Metadata{}, fmt.Errorf("reading artifact metadata: %w", err)
	}
	m, err := ParseMetadata(raw)
	if err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(dir, MetadataFile), err)
	}
	return m, nil
}

// validName accepts BOSH instance group, job and release names: no path
// separators, nothing that could escape the artifact directory.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

func validIndex(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func indexLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// IsSHA256Hex says whether s is a sha256 in lowercase hex, as both
// upstream's metadata and the checksum tools write it.
func IsSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// ValidArtifactFile says whether name can name a file of a backup: no
// path separators, nothing that could reach outside it.
func ValidArtifactFile(name string) bool { return validName(name) }

// MaxMetadataSize bounds a metadata file read from a bucket: a sha256
// line per backed-up file, so large for a blobstore, never unbounded.
const MaxMetadataSize = 256 << 20
