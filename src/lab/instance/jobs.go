package instance

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bbr-release/bbr/src/lab/jobrender"
)

// installJob puts a job on the instance. A real BOSH release job (a spec
// and ERB templates) is rendered into /var/vcap/jobs/<name> as the
// Director would, and the packages its spec names are copied from the
// release's packages/ directory to /var/vcap/packages. A lab job (bin/
// scripts) is copied, with its manifest properties in
// config/properties.json, the lab's stand-in for rendered templates.
func installJob(root, name string, job Job, inst jobrender.Instance) error {
	dst := filepath.Join(root, "jobs", name)
	if jobrender.IsJob(job.Source) {
		return installReleaseJob(root, dst, job, inst)
	}
	if err := copyTree(job.Source, dst); err != nil {
		return fmt.Errorf("installing job %s from %s: %w", name, job.Source, err)
	}
	props := job.Properties
	if props == nil {
		props = map[string]any{}
	}
	raw, err := json.MarshalIndent(props, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding properties of job %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Join(dst, "config"), 0o755); err != nil {
		return fmt.Errorf("creating config dir of job %s: %w", name, err)
	}
	file := filepath.Join(dst, "config", "properties.json")
	if err := os.WriteFile(file, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

func installReleaseJob(root, dst string, job Job, inst jobrender.Instance) error {
	spec, err := jobrender.ReadSpec(job.Source)
	if err != nil {
		return err
	}
	if err := jobrender.Render(job.Source, dst, inst, job.Properties); err != nil {
		return err
	}
	// <release>/jobs/<job> -> <release>/packages/<package>
	packages := filepath.Join(filepath.Dir(filepath.Dir(job.Source)), "packages")
	for _, pkg := range spec.Packages {
		src := filepath.Join(packages, pkg)
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("job %s needs package %s: no directory %s with its compiled contents", spec.Name, pkg, src)
		}
		if err := copyTree(src, filepath.Join(root, "packages", pkg)); err != nil {
			return fmt.Errorf("installing package %s: %w", pkg, err)
		}
	}
	return nil
}

// copyTree copies src into dst. Files under bin/ become 0755 whatever their
// mode in the source (embedded files and some checkouts lose the x bit);
// other files keep their executable bit.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return mkdirMode(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if strings.HasPrefix(rel, "bin"+string(filepath.Separator)) || info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			return copyFile(path, target, mode)
		default:
			return nil // sockets, devices: nothing a job ships
		}
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
