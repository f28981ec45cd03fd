// Package releasestore is the lab Director's release store: it takes a
// release tarball as a Director does (release.MF, every job's and
// package's digest), keeps jobs and packages by fingerprint, compiles
// packages as a compilation VM does, and lays a release out as the lab's
// deployment directories hold releases.
package releasestore

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	boshcrypto "github.com/cloudfoundry/bosh-utils/crypto"
	yaml "go.yaml.in/yaml/v2"
)

// Manifest is a release's release.MF.
type Manifest struct {
	Name               string `yaml:"name"`
	Version            string `yaml:"version"`
	CommitHash         string `yaml:"commit_hash"`
	UncommittedChanges bool   `yaml:"uncommitted_changes"`
	Jobs               []Item `yaml:"jobs"`
	Packages           []Item `yaml:"packages"`
}

// Item is one job or package of a release.
type Item struct {
	Name         string   `yaml:"name"`
	Version      string   `yaml:"version"`
	Fingerprint  string   `yaml:"fingerprint"`
	SHA1         string   `yaml:"sha1"`
	Dependencies []string `yaml:"dependencies,omitempty"`
}

// Store keeps releases under Dir.
type Store struct {
	Dir string
	// CompileCache, when set, keeps compiled packages across labs
	// (<name>/<fingerprint>/), so a release compiles once per version.
	CompileCache string

	mu sync.Mutex // one upload or compilation at a time
}

// maxManifest bounds release.MF.
const maxManifest = 4 << 20

var (
	nameRE        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
	fingerprintRE = regexp.MustCompile(`^[A-Za-z0-9]{1,128}$`)
)

func (s *Store) itemPath(kind, name, fingerprint string) string {
	return filepath.Join(s.Dir, kind, name, fingerprint+".tgz")
}

func (s *Store) manifestPath(name, version string) string {
	return filepath.Join(s.Dir, "releases", name, version+".MF")
}

// Upload reads a release tarball and keeps it. A job or package whose
// digest is not the one release.MF gives is refused; one left out of the
// tarball must be in the store already (the CLI leaves out the packages
// POST /packages/matches named).
func (s *Store) Upload(r io.Reader) (Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tmp, err := os.MkdirTemp(s.mkdir("tmp"), "upload-")
	if err != nil {
		return Manifest{}, err
	}
	defer os.RemoveAll(tmp)
	m, files, err := readTarball(r, tmp)
	if err != nil {
		return Manifest{}, err
	}
	if err := m.validate(); err != nil {
		return m, err
	}
	// Every file given is checked, even when the version is known.
	for _, kind := range []string{"jobs", "packages"} {
		for _, it := range m.items(kind) {
			if err := verify(kind, it, files[kind+"/"+it.Name]); err != nil {
				return m, err
			}
		}
	}
	if known, err := s.Manifest(m.Name, m.Version); err == nil {
		if !sameContents(known, m) {
			return m, fmt.Errorf("Release '%s/%s' already exists with other contents: give the new one another version", m.Name, m.Version)
		}
		return m, nil // uploaded again: nothing new
	}
	for _, kind := range []string{"jobs", "packages"} {
		for _, it := range m.items(kind) {
			if err := s.keep(kind, it, files[kind+"/"+it.Name]); err != nil {
				return m, err
			}
		}
	}
	raw, err := yaml.Marshal(m)
	if err != nil {
		return m, err
	}
	s.mkdir("releases", m.Name)
	return m, os.WriteFile(s.manifestPath(m.Name, m.Version), raw, 0o644)
}

func describe(kind string, it Item) string {
	return fmt.Sprintf("%s '%s' (fingerprint %s)", strings.TrimSuffix(kind, "s"), it.Name, it.Fingerprint)
}

// verify checks the item's file, when the tarball has it, against the
// digest release.MF gives.
func verify(kind string, it Item, file string) error {
	if file == "" {
		return nil
	}
	digest, err := boshcrypto.ParseMultipleDigest(it.SHA1)
	if err != nil {
		return fmt.Errorf("%s: its digest %q: %w", describe(kind, it), it.SHA1, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := digest.Verify(f); err != nil {
		return fmt.Errorf("Verifying %s: %w", describe(kind, it), err)
	}
	return nil
}

// keep stores the item's checked file; with none, the store must hold
// its fingerprint already.
func (s *Store) keep(kind string, it Item, file string) error {
	dst := s.itemPath(kind, it.Name, it.Fingerprint)
	if file == "" {
		if _, err := os.Stat(dst); err != nil {
			return fmt.Errorf("%s is neither in the tarball nor on the Director", describe(kind, it))
		}
		return nil
	}
	if _, err := os.Stat(dst); err == nil {
		return nil // kept already: the fingerprint names its contents
	}
	s.mkdir(kind, it.Name)
	return os.Rename(file, dst)
}

// readTarball unpacks release.MF and the jobs' and packages' tarballs
// into dir; nothing else of the tarball is written.
func readTarball(r io.Reader, dir string) (Manifest, map[string]string, error) {
	var m Manifest
	files := map[string]string{}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return m, nil, fmt.Errorf("the release is not a gzipped tarball: %w", err)
	}
	tr := tar.NewReader(gz)
	seenManifest := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, nil, fmt.Errorf("reading the release tarball: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		switch kind, file, _ := strings.Cut(name, "/"); {
		case name == "release.MF":
			raw, err := io.ReadAll(io.LimitReader(tr, maxManifest+1))
			if err != nil {
				return m, nil, err
			}
			if len(raw) > maxManifest {
				return m, nil, errors.New("release.MF is too large")
			}
			if err := yaml.Unmarshal(raw, &m); err != nil {
				return m, nil, fmt.Errorf("parsing release.MF: %w", err)
			}
			seenManifest = true
		case (kind == "jobs" || kind == "packages") && strings.HasSuffix(file, ".tgz") && nameRE.MatchString(strings.TrimSuffix(file, ".tgz")):
			dst := filepath.Join(dir, kind+"-"+file)
			if err := writeFile(dst, tr); err != nil {
				return m, nil, err
			}
			files[kind+"/"+strings.TrimSuffix(file, ".tgz")] = dst
		}
	}
	if !seenManifest {
		return m, nil, errors.New("the release tarball has no release.MF")
	}
	return m, files, nil
}

func writeFile(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (m Manifest) items(kind string) []Item {
	if kind == "jobs" {
		return m.Jobs
	}
	return m.Packages
}

// validate refuses names and fingerprints that could not be paths of the
// store, and dependencies on packages the release does not have.
func (m Manifest) validate() error {
	if !nameRE.MatchString(m.Name) || !nameRE.MatchString(m.Version) {
		return fmt.Errorf("release.MF: name %q and version %q must be plain names", m.Name, m.Version)
	}
	for _, kind := range []string{"jobs", "packages"} {
		for _, it := range m.items(kind) {
			if !nameRE.MatchString(it.Name) || !fingerprintRE.MatchString(it.Fingerprint) {
				return fmt.Errorf("release.MF: %s %q (fingerprint %q): not a plain name and fingerprint", kind, it.Name, it.Fingerprint)
			}
		}
	}
	for _, p := range m.Packages {
		for _, d := range p.Dependencies {
			if _, ok := m.Package(d); !ok {
				return fmt.Errorf("release.MF: package '%s' depends on '%s', which the release does not have", p.Name, d)
			}
		}
	}
	return nil
}

// Package is the release's package called name.
func (m Manifest) Package(name string) (Item, bool) {
	i := slices.IndexFunc(m.Packages, func(p Item) bool { return p.Name == name })
	if i < 0 {
		return Item{}, false
	}
	return m.Packages[i], true
}

func sameContents(a, b Manifest) bool {
	fps := func(m Manifest) []string {
		var out []string
		for _, it := range append(slices.Clone(m.Jobs), m.Packages...) {
			out = append(out, it.Name+"/"+it.Fingerprint)
		}
		sort.Strings(out)
		return out
	}
	return slices.Equal(fps(a), fps(b))
}

// Manifest is the stored release name/version.
func (s *Store) Manifest(name, version string) (Manifest, error) {
	var m Manifest
	if !nameRE.MatchString(name) || !nameRE.MatchString(version) {
		return m, fmt.Errorf("Release '%s/%s' doesn't exist", name, version)
	}
	raw, err := os.ReadFile(s.manifestPath(name, version))
	if err != nil {
		return m, fmt.Errorf("Release '%s/%s' doesn't exist", name, version)
	}
	return m, yaml.Unmarshal(raw, &m)
}

// Releases lists the stored releases by name, each one's versions in
// upload order.
func (s *Store) Releases() map[string][]Manifest {
	out := map[string][]Manifest{}
	names, _ := os.ReadDir(filepath.Join(s.Dir, "releases"))
	for _, n := range names {
		files, _ := filepath.Glob(filepath.Join(s.Dir, "releases", n.Name(), "*.MF"))
		sort.Slice(files, func(i, j int) bool { return modTime(files[i]) < modTime(files[j]) })
		for _, f := range files {
			if m, err := s.Manifest(n.Name(), strings.TrimSuffix(filepath.Base(f), ".MF")); err == nil {
				out[n.Name()] = append(out[n.Name()], m)
			}
		}
	}
	return out
}

func modTime(file string) int64 {
	info, err := os.Stat(file)
	if err != nil {
		return 0
	}
	return info.ModTime().UnixNano()
}

// Latest is the newest uploaded version of the release.
func (s *Store) Latest(name string) (Manifest, error) {
	versions := s.Releases()[name]
	if len(versions) == 0 {
		return Manifest{}, fmt.Errorf("Release '%s' doesn't exist", name)
	}
	return versions[len(versions)-1], nil
}

// Matches are the fingerprints of m's packages the store holds: what
// the CLI need not upload (POST /packages/matches).
func (s *Store) Matches(m Manifest) []string {
	out := []string{}
	for _, p := range m.Packages {
		if fingerprintRE.MatchString(p.Fingerprint) && nameRE.MatchString(p.Name) {
			if _, err := os.Stat(s.itemPath("packages", p.Name, p.Fingerprint)); err == nil {
				out = append(out, p.Fingerprint)
			}
		}
	}
	return out
}

func (s *Store) mkdir(elems ...string) string {
	dir := filepath.Join(append([]string{s.Dir}, elems...)...)
	_ = os.MkdirAll(dir, 0o755)
	return dir
}
