package artifact

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// ValidateOptions tune Validate.
type ValidateOptions struct {
	// AllowMissingChecksums passes a file the metadata lists without
	// checksums (upstream's metadata never has them missing).
	AllowMissingChecksums bool
}

// FileCheck is what Validate found of one file.
type FileCheck struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	Files int    `json:"files"` // files in the tar, as the metadata lists them
	// Problem is empty when the file is good.
	Problem string `json:"problem,omitempty"`
}

// Validation is the verdict on one backup, for a person or a machine.
type Validation struct {
	Location   string        `json:"location"`
	Deployment string        `json:"deployment"`
	Started    string        `json:"started"`
	Finished   string        `json:"finished"`
	LockWindow time.Duration `json:"lock_window_ns"`
	Instances  []string      `json:"instances"`
	Files      []FileCheck   `json:"files"`
	// Problems are what is wrong besides single tars: files missing or
	// not named by the metadata.
	Problems []string `json:"problems,omitempty"`
	Size     int64    `json:"size"`
}

// OK says whether everything checked out.
func (v Validation) OK() bool { return len(v.Bad()) == 0 }

// Bad lists every problem: each bad file's ("name: why"), then the rest.
func (v Validation) Bad() []string {
	var bad []string
	for _, f := range v.Files {
		if f.Problem != "" {
			bad = append(bad, f.Name+": "+f.Problem)
		}
	}
	return append(bad, v.Problems...)
}

// Validate checks a backup without touching any platform: every file the
// metadata names is there and nothing else is, and every tar passes
// restore's safety rules and matches its checksums. It returns an error
// only when it could not check (ctx done, the backup cannot be listed).
func Validate(ctx context.Context, src Source, opts ValidateOptions) (Validation, error) {
	meta := src.Metadata()
	v := Validation{Location: src.Location(), Started: meta.BackupActivity.StartTime, Finished: meta.BackupActivity.FinishTime}
	v.Deployment, _, _ = ParseBackupName(path.Base(src.Location()))
	v.LockWindow = meta.BackupActivity.LockWindow()
	for _, inst := range meta.Instances {
		for _, a := range inst.Artifacts {
			v.Instances = append(v.Instances, fmt.Sprintf("%s/%s %s", inst.Name, inst.Index, a.Name))
		}
	}
	stored, err := src.Files()
	if err != nil {
		return v, fmt.Errorf("listing %s: %w", src.Location(), err)
	}
	for _, size := range stored {
		v.Size += size
	}
	named := meta.Files()
	for file := range stored {
		if _, ok := named[file]; !ok && file != MetadataFile && file != ManifestFile {
			v.Problems = append(v.Problems, fmt.Sprintf("%s is in the backup but not in its metadata", file))
		}
	}
	sort.Strings(v.Problems)
	v.Files = checkFiles(ctx, src, named, stored, opts)
	return v, ctx.Err()
}

// checkFiles verifies the named tars, one per CPU at a time.
func checkFiles(ctx context.Context, src Source, named map[string]Checksums, stored map[string]int64, opts ValidateOptions) []FileCheck {
	names := sortedNames(named)
	checks := make([]FileCheck, len(names))
	eachInParallel(names, func(i int, name string) {
		checks[i] = FileCheck{Name: name, Size: stored[name], Files: len(named[name])}
		if _, ok := stored[name]; !ok {
			checks[i].Problem = "missing: the metadata names it, the backup does not have it"
		} else if err := verifyFile(ctx, src.Open, name, named[name], opts.AllowMissingChecksums); err != nil {
			checks[i].Problem = problem(err)
		}
	})
	return checks
}

// problem is err without the "backup is corrupted: " every check starts
// with: the verdict already says so.
func problem(err error) string {
	return strings.TrimPrefix(err.Error(), "backup is corrupted: ")
}
