package releasestore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	yaml "go.yaml.in/yaml/v2"
)

// compileScript runs a package's packaging script as a compilation VM
// does, in a mount namespace of its own where /var/vcap is a fresh
// directory: the dependencies' compiled contents at
// /var/vcap/packages/<dep>, the install target at
// /var/vcap/packages/<name> and the sources at
// /var/vcap/data/compile/<name>. Paths come as environment variables and
// arguments, never in the script's text.
const compileScript = `set -e
mount --bind "$LAB_ROOT" /var/vcap
mkdir -p "/var/vcap/packages/$BOSH_PACKAGE_NAME" "$BOSH_COMPILE_TARGET"
mount --bind "$LAB_INSTALL" "/var/vcap/packages/$BOSH_PACKAGE_NAME"
mount --bind "$LAB_SOURCES" "$BOSH_COMPILE_TARGET"
while [ $# -gt 0 ]; do
  mkdir -p "/var/vcap/packages/$1"
  mount --bind "$2" "/var/vcap/packages/$1"
  shift 2
done
cd "$BOSH_COMPILE_TARGET"
exec bash -x packaging
`

// Step runs one step of work under a label ("bbr/<fingerprint>"), so
// that the caller can report it (the Director's task events).
type Step func(label string, work func() error) error

// Compile compiles the packages jobs of m need, with their dependencies,
// in dependency order, once per fingerprint: each package's compilation
// (or copy from the cache) is a step.
func (s *Store) Compile(ctx context.Context, m Manifest, jobs []string, step Step) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var needed []string
	for _, j := range jobs {
		spec, err := s.JobSpec(m, j)
		if err != nil {
			return err
		}
		needed = append(needed, spec.Packages...)
	}
	order, err := dependencyOrder(m, needed)
	if err != nil {
		return err
	}
	for _, p := range order {
		if err := s.compileOne(ctx, m, p, step); err != nil {
			return err
		}
	}
	return nil
}

// dependencyOrder lists names and everything they depend on, each after
// its dependencies.
func dependencyOrder(m Manifest, names []string) ([]Item, error) {
	var out []Item
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		if slices.Contains(path, name) {
			return fmt.Errorf("package dependencies form a cycle: %s", strings.Join(append(path, name), " -> "))
		}
		if slices.ContainsFunc(out, func(i Item) bool { return i.Name == name }) {
			return nil
		}
		p, ok := m.Package(name)
		if !ok {
			return fmt.Errorf("release %s/%s has no package '%s'", m.Name, m.Version, name)
		}
		for _, d := range p.Dependencies {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		out = append(out, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Compiled is where package p's compiled contents are.
func (s *Store) Compiled(p Item) string {
	return filepath.Join(s.Dir, "compiled", p.Name, p.Fingerprint)
}

func (s *Store) compileOne(ctx context.Context, m Manifest, p Item, step Step) error {
	dst := s.Compiled(p)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	label := p.Name + "/" + p.Fingerprint
	if s.CompileCache != "" {
		cached := filepath.Join(s.CompileCache, p.Name, p.Fingerprint)
		if _, err := os.Stat(cached); err == nil {
			return step(label+" (cached)", func() error { return copyInto(cached, dst) })
		}
	}
	if info, err := os.Stat("/var/vcap"); err != nil || !info.IsDir() {
		return fmt.Errorf("compiling package '%s' needs the mount point /var/vcap, which bbr-lab up makes", p.Name)
	}
	return step(label, func() error { return s.compile(ctx, m, p, dst) })
}

// compile runs p's packaging script and keeps what it installed at dst
// (and in the cache).
func (s *Store) compile(ctx context.Context, m Manifest, p Item, dst string) error {
	work, err := os.MkdirTemp(s.mkdir("tmp"), "compile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root, sources, install := filepath.Join(work, "root"), filepath.Join(work, "sources"), filepath.Join(work, "install")
	for _, d := range []string{root, sources, install} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := extractTgz(s.itemPath("packages", p.Name, p.Fingerprint), sources); err != nil {
		return fmt.Errorf("unpacking package '%s': %w", p.Name, err)
	}
	args := []string{"--mount", "--propagation", "private", "--", "bash", "-c", compileScript, "compile"}
	for _, d := range p.Dependencies {
		dep, _ := m.Package(d)
		args = append(args, d, s.Compiled(dep))
	}
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
		"LAB_ROOT=" + root, "LAB_INSTALL=" + install, "LAB_SOURCES=" + sources,
		"BOSH_COMPILE_TARGET=/var/vcap/data/compile/" + p.Name,
		"BOSH_INSTALL_TARGET=/var/vcap/packages/" + p.Name,
		"BOSH_PACKAGES_DIR=/var/vcap/packages",
		"BOSH_PACKAGE_NAME=" + p.Name,
		"BOSH_PACKAGE_VERSION=" + p.Version,
	}
	// A cancelled deploy stops the whole packaging script, children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("Compiling package '%s': %w:\n%s", p.Name, err, lastLines(out.String(), 20))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Rename(install, dst); err != nil {
		return err
	}
	if s.CompileCache != "" {
		// Another lab may fill the same entry: the first rename wins.
		_ = copyInto(dst, filepath.Join(s.CompileCache, p.Name, p.Fingerprint))
	}
	return nil
}

// copyInto copies src's tree to dst through a temporary directory beside
// it, so that dst is whole or absent.
func copyInto(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := copyDir(src, filepath.Join(tmp, "c")); err != nil {
		return err
	}
	return os.Rename(filepath.Join(tmp, "c"), dst)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// JobSpec is the job's spec (job.MF) in release m.
type JobSpec struct {
	Name     string   `yaml:"name"`
	Packages []string `yaml:"packages"`
}

// JobSpec reads job name's job.MF.
func (s *Store) JobSpec(m Manifest, name string) (JobSpec, error) {
	var spec JobSpec
	i := slices.IndexFunc(m.Jobs, func(j Item) bool { return j.Name == name })
	if i < 0 {
		return spec, fmt.Errorf("Job '%s' not found in release '%s/%s'", name, m.Name, m.Version)
	}
	raw, err := readFromTgz(s.itemPath("jobs", name, m.Jobs[i].Fingerprint), "job.MF")
	if err != nil {
		return spec, fmt.Errorf("job '%s': %w", name, err)
	}
	return spec, yaml.Unmarshal(raw, &spec)
}

// Layout writes release m as a lab deployment directory holds it:
// <dst>/jobs/<job>/ (spec, templates/, monit) for jobs, and
// <dst>/packages/<pkg>/ with the compiled contents of their packages.
func (s *Store) Layout(m Manifest, jobs []string, dst string) error {
	for _, j := range jobs {
		i := slices.IndexFunc(m.Jobs, func(it Item) bool { return it.Name == j })
		if i < 0 {
			return fmt.Errorf("Job '%s' not found in release '%s/%s'", j, m.Name, m.Version)
		}
		dir := filepath.Join(dst, "jobs", j)
		if err := extractTgz(s.itemPath("jobs", j, m.Jobs[i].Fingerprint), dir); err != nil {
			return fmt.Errorf("unpacking job '%s': %w", j, err)
		}
		if err := os.Rename(filepath.Join(dir, "job.MF"), filepath.Join(dir, "spec")); err != nil {
			return fmt.Errorf("job '%s' has no job.MF: %w", j, err)
		}
		spec, err := s.JobSpec(m, j)
		if err != nil {
			return err
		}
		for _, p := range spec.Packages {
			pkg, ok := m.Package(p)
			if !ok {
				return fmt.Errorf("job '%s' needs package '%s', which release %s/%s does not have", j, p, m.Name, m.Version)
			}
			target := filepath.Join(dst, "packages", p)
			if _, err := os.Stat(target); err == nil {
				continue // another job's package too
			}
			if err := copyDir(s.Compiled(pkg), target); err != nil {
				return fmt.Errorf("package '%s' is not compiled: %w", p, err)
			}
		}
	}
	return nil
}

// extractTgz unpacks a job's or package's tarball into dir, refusing
// entries that would land outside it.
func extractTgz(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if rel == "" {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fs.FileMode(hdr.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: entries of type %q are not taken", hdr.Name, hdr.Typeflag)
		}
	}
}

func readFromTgz(file, name string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("no %s in it", name)
		}
		if strings.TrimPrefix(path.Clean("/"+hdr.Name), "/") == name {
			return io.ReadAll(io.LimitReader(tr, maxManifest))
		}
	}
}

// copyDir copies src's tree to dst (which must not exist), keeping modes
// and symlinks.
func copyDir(src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, info.Mode().Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil
	})
}
