package instance

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// installJob copies a release's job directory to /var/vcap/jobs/<name> and
// writes the job's manifest properties to config/properties.json, which is
// the lab's stand-in for rendered templates.
func installJob(root, name string, job Job) error {
	dst := filepath.Join(root, "jobs", name)
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
