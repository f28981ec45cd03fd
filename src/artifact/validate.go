package artifact

import (
	"context"
	"fmt"
	"io"
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
	// StoredOnly checks encrypted files by the size and CRC-64 of their
	// stored bytes alone, which needs no identity; their contents are
	// then not checked.
	StoredOnly bool
}

// FileCheck is what Validate found of one file.
type FileCheck struct {
	Name string `json:"name"`
	// StoredAs is the name the file is stored under (Name, when plain).
	StoredAs   string   `json:"stored_as"`
	Transforms []string `json:"transforms,omitempty"`
	Size       int64    `json:"size"` // stored bytes
	PlainSize  int64    `json:"plain_size"`
	Files      int      `json:"files"` // files in the tar, as the metadata lists them
	// ContentsChecked is false when only the stored bytes were checked.
	ContentsChecked bool `json:"contents_checked"`
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
	// not named by the metadata, a manifest that does not read.
	Problems   []string `json:"problems,omitempty"`
	Size       int64    `json:"size"`
	PlainSize  int64    `json:"plain_size"`
	Transforms string   `json:"transforms"`
	Recipients []string `json:"recipients,omitempty"`
}

// OK says whether everything checked out.
func (v Validation) OK() bool { return len(v.Bad()) == 0 }

// ContentsChecked says whether every tar's contents were checked, not
// only its stored bytes.
func (v Validation) ContentsChecked() bool {
	for _, f := range v.Files {
		if !f.ContentsChecked {
			return false
		}
	}
	return true
}

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
// metadata names is there and nothing else is, every tar passes
// restore's safety rules and matches its checksums (read through src,
// which decodes what is stored compressed or encrypted), and an encoded
// file's stored bytes match their recorded CRC-64. It returns an error
// only when it could not check (ctx done, the backup cannot be listed).
func Validate(ctx context.Context, src Source, opts ValidateOptions) (Validation, error) {
	meta := src.Metadata()
	v := Validation{Location: src.Location(), Started: meta.BackupActivity.StartTime, Finished: meta.BackupActivity.FinishTime,
		Transforms: meta.Transforms(), Recipients: meta.Recipients()}
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
	expected := map[string]bool{MetadataFile: true, meta.StoredName(ManifestFile): true}
	for file := range named {
		expected[meta.StoredName(file)] = true
	}
	for file := range stored {
		if !expected[file] {
			v.Problems = append(v.Problems, fmt.Sprintf("%s is in the backup but not in its metadata", file))
		}
	}
	sort.Strings(v.Problems)
	v.Files = checkFiles(ctx, src, meta, named, stored, opts)
	v.PlainSize = v.Size // the metadata and the manifest count alike
	for _, f := range v.Files {
		v.PlainSize += f.PlainSize - f.Size
	}
	if problem := checkManifest(ctx, src, meta, stored, opts); problem != "" {
		v.Problems = append(v.Problems, problem)
	}
	return v, ctx.Err()
}

// checkFiles verifies the named tars (meta.Files()), one per CPU at a time.
func checkFiles(ctx context.Context, src Source, meta Metadata, named map[string]Checksums, stored map[string]int64, opts ValidateOptions) []FileCheck {
	names := sortedNames(named)
	checks := make([]FileCheck, len(names))
	eachInParallel(names, func(i int, name string) {
		e, encoded := meta.Encodings[name]
		c := FileCheck{Name: name, StoredAs: meta.StoredName(name), Transforms: e.Transforms, Files: len(named[name])}
		c.Size = stored[c.StoredAs]
		c.PlainSize = c.Size
		if encoded {
			c.PlainSize = e.PlainSize
		}
		var err error
		switch _, ok := stored[c.StoredAs]; {
		case !ok:
			c.Problem = "missing: the metadata names it, the backup does not have it"
		case encoded && e.Encrypted() && opts.StoredOnly:
			err = checkStored(ctx, src, name, e)
		case encoded:
			if err = checkStored(ctx, src, name, e); err == nil {
				err = verifyFile(ctx, src.Open, name, named[name], opts.AllowMissingChecksums)
				c.ContentsChecked = true
			}
		default:
			err = verifyFile(ctx, src.Open, name, named[name], opts.AllowMissingChecksums)
			c.ContentsChecked = true
		}
		if err != nil {
			c.Problem = problem(err)
		}
		checks[i] = c
	})
	return checks
}

// checkStored reads file's stored bytes and compares them with e.
func checkStored(ctx context.Context, src Source, file string, e Encoding) error {
	return readStored(ctx, src, file, e, func(_ string, r io.Reader) (int64, error) {
		return io.CopyBuffer(io.Discard, r, make([]byte, ioBufferSize))
	})
}

// checkManifest checks an encoded manifest's stored bytes and, unless
// only those are to be checked, that it decodes. A plain manifest is
// not checked: the metadata has no checksum for it, as upstream's.
func checkManifest(ctx context.Context, src Source, meta Metadata, stored map[string]int64, opts ValidateOptions) string {
	e, ok := meta.Encodings[ManifestFile]
	if !ok {
		return ""
	}
	name := e.StoredName(ManifestFile)
	if _, ok := stored[name]; !ok {
		return name + ": missing: the metadata names it, the backup does not have it"
	}
	err := checkStored(ctx, src, ManifestFile, e)
	if err == nil && !(e.Encrypted() && opts.StoredOnly) {
		err = readAll(ctx, src, ManifestFile)
	}
	if err != nil {
		return name + ": " + problem(err)
	}
	return ""
}

func readAll(ctx context.Context, src Source, file string) error {
	r, err := src.Open(ctx, file)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(io.Discard, contextReader{ctx, r})
	return err
}

// problem is err without the "backup is corrupted: " every check starts
// with: the verdict already says so.
func problem(err error) string {
	return strings.TrimPrefix(err.Error(), "backup is corrupted: ")
}
