// Package sample holds the lab's sample deployments and the releases whose
// job scripts they use, embedded in bbr-lab so that `bbr-lab up` needs no
// files. See README.md for the script conventions.
package sample

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// FS holds deployments/<name>/manifest.yml and
// releases/<release>/jobs/<job>/... .
//
//go:embed deployments releases
var FS embed.FS

// Default is the deployment `bbr-lab up` starts when given none.
const Default = "sample"

// Deployments lists the embedded deployments by name.
func Deployments() ([]string, error) {
	entries, err := fs.ReadDir(FS, "deployments")
	if err != nil {
		return nil, fmt.Errorf("listing embedded deployments: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Extract writes the embedded deployment name to dst as a lab deployment
// directory: dst/manifest.yml and dst/releases/<release>/jobs/<job>/...
// (every embedded release, so that the directory stands alone). Files
// under a job's bin/ are made executable; embed.FS keeps no modes.
func Extract(name, dst string) error {
	manifest, err := FS.ReadFile(path.Join("deployments", name, "manifest.yml"))
	if err != nil {
		return fmt.Errorf("no embedded deployment %q: %w", name, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	if err := os.WriteFile(filepath.Join(dst, "manifest.yml"), manifest, 0o644); err != nil {
		return fmt.Errorf("writing manifest of %s: %w", name, err)
	}
	return fs.WalkDir(FS, "releases", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		raw, err := FS.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.Contains(p, "/bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(target, raw, mode); err != nil {
			return fmt.Errorf("extracting %s: %w", p, err)
		}
		return nil
	})
}
