// Package jobrender renders a BOSH release job's templates the way the
// Director does: ERB evaluated by Ruby through bosh-cli's renderer, with
// p, if_p and spec, properties from the manifest over the spec's defaults.
// The lab uses it to put a real release job (the backup and restore
// errands) on an instance.
package jobrender

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cloudfoundry/bosh-cli/v7/templatescompiler/erbrenderer"
	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	boshsys "github.com/cloudfoundry/bosh-utils/system"

	"github.com/bbr-release/bbr/src/lab/model"
	yaml "go.yaml.in/yaml/v2"
)

// Spec is the part of a job's spec file rendering needs.
type Spec struct {
	Name       string              `yaml:"name"`
	Templates  map[string]string   `yaml:"templates"` // source under templates/ -> destination
	Packages   []string            `yaml:"packages"`
	Properties map[string]Property `yaml:"properties"`
}

// Property is one spec property.
type Property struct {
	Description string `yaml:"description"`
	Default     any    `yaml:"default"`
}

// Instance is where the job runs, as the template's spec sees it.
type Instance struct {
	Deployment string
	Group      string
	Index      int
	ID         string
	AZ         string
	IP         string
	Bootstrap  bool
}

// For is the rendering identity of a lab instance of deployment.
func For(deployment string, inst model.Instance) Instance {
	return Instance{Deployment: deployment, Group: inst.Group, Index: inst.Index, ID: inst.ID, AZ: inst.AZ, IP: inst.IP, Bootstrap: inst.Bootstrap}
}

// IsJob says whether dir holds a BOSH release job (a spec file).
func IsJob(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "spec"))
	return err == nil && st.Mode().IsRegular()
}

// ReadSpec reads dir/spec.
func ReadSpec(dir string) (Spec, error) {
	var s Spec
	raw, err := os.ReadFile(filepath.Join(dir, "spec"))
	if err != nil {
		return s, fmt.Errorf("reading job spec: %w", err)
	}
	if err := yaml.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("parsing %s: %w", filepath.Join(dir, "spec"), err)
	}
	if s.Name == "" {
		return s, fmt.Errorf("%s has no name", filepath.Join(dir, "spec"))
	}
	return s, nil
}

// Render renders every template of the job in dir into dst (the job's
// /var/vcap/jobs/<name>), with the manifest's properties. Files under bin/
// are made executable (0755), the others 0640.
func Render(dir, dst string, inst Instance, properties map[string]any) error {
	spec, err := ReadSpec(dir)
	if err != nil {
		return err
	}
	ctx, err := newContext(spec, inst, properties)
	if err != nil {
		return err
	}
	logger := boshlog.NewLogger(boshlog.LevelNone)
	fs := boshsys.NewOsFileSystem(logger)
	renderer := erbrenderer.NewERBRenderer(fs, boshsys.NewExecCmdRunner(logger), logger)
	srcs := make([]string, 0, len(spec.Templates))
	for src := range spec.Templates {
		srcs = append(srcs, src)
	}
	sort.Strings(srcs)
	for _, src := range srcs {
		out := filepath.Join(dst, filepath.Clean("/"+spec.Templates[src]))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := renderer.Render(filepath.Join(dir, "templates", src), out, ctx); err != nil {
			return fmt.Errorf("rendering %s of job %s: %w", src, spec.Name, err)
		}
		// Rendered config often holds credentials: not world-readable,
		// as the agent renders it.
		mode := os.FileMode(0o640)
		if filepath.Base(filepath.Dir(out)) == "bin" {
			mode = 0o755
		}
		if err := os.Chmod(out, mode); err != nil {
			return err
		}
	}
	return nil
}

// context is the JSON bosh-cli's Ruby renderer reads: the instance, the
// manifest's job properties and the spec's defaults by dotted name.
type context struct {
	raw []byte
}

func (c context) MarshalJSON() ([]byte, error) { return c.raw, nil }

func newContext(spec Spec, inst Instance, properties map[string]any) (context, error) {
	defaults := map[string]any{}
	for name, p := range spec.Properties {
		defaults[name] = jsonable(p.Default)
	}
	if properties == nil {
		properties = map[string]any{}
	}
	raw, err := json.Marshal(map[string]any{
		"index":              inst.Index,
		"id":                 inst.ID,
		"az":                 inst.AZ,
		"bootstrap":          inst.Bootstrap,
		"name":               inst.Group,
		"deployment":         inst.Deployment,
		"address":            inst.IP,
		"ip":                 inst.IP,
		"job":                map[string]string{"name": spec.Name},
		"networks":           map[string]any{"default": map[string]string{"ip": inst.IP}},
		"job_properties":     jsonable(properties),
		"default_properties": defaults,
	})
	if err != nil {
		return context{}, fmt.Errorf("encoding the template context of job %s: %w", spec.Name, err)
	}
	return context{raw: raw}, nil
}

// jsonable turns YAML v2's map[interface{}]interface{} into JSON-encodable
// maps.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[fmt.Sprint(k)] = jsonable(v)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = jsonable(v)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			out[i] = jsonable(v)
		}
		return out
	}
	return v
}
