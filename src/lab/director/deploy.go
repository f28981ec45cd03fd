package director

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v2"

	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/releasestore"
)

// Deployer starts a deployment's instances, as the Director has a CPI and
// agents do.
type Deployer interface {
	// Deploy starts the deployment in dir (manifest.yml and releases/, as
	// `bbr-lab up` reads a deployment directory). With previous, it
	// replaces previous's instances, keeping their IDs, addresses and
	// persistent disks.
	Deploy(ctx context.Context, dir string, previous *model.Deployment) (model.Deployment, error)
	// Delete stops the deployment's instances and removes their disks.
	Delete(ctx context.Context, d model.Deployment) error
}

// maxRelease bounds an uploaded release tarball.
const maxRelease = 8 << 30

// deployTimeout bounds upload and deploy tasks: compiling takes minutes.
const deployTimeout = time.Hour

// codeReleaseInvalid is the Director's code for a release it refuses.
const codeReleaseInvalid = 30001

func (s *Server) noReleases(w http.ResponseWriter) bool {
	if s.cfg.Releases == nil || s.cfg.Deployer == nil {
		writeError(w, http.StatusNotFound, codeValidation, "this lab Director takes no releases or deploys")
		return true
	}
	return false
}

// listReleases is GET /releases (bosh-cli ReleaseSeriesResp).
func (s *Server) listReleases(w http.ResponseWriter, _ *http.Request) {
	type version struct {
		Version            string   `json:"version"`
		CommitHash         string   `json:"commit_hash"`
		UncommittedChanges bool     `json:"uncommitted_changes"`
		CurrentlyDeployed  bool     `json:"currently_deployed"`
		JobNames           []string `json:"job_names"`
	}
	type series struct {
		Name     string    `json:"name"`
		Versions []version `json:"release_versions"`
	}
	out := []series{}
	if s.cfg.Releases == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	deployed := map[string]bool{}
	for _, d := range s.Deployments() {
		for _, r := range s.summary(d.Name).releases {
			deployed[r.Name+"/"+r.Version] = true
		}
	}
	all := s.cfg.Releases.Releases()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		sr := series{Name: n}
		for _, m := range all[n] {
			v := version{Version: m.Version, CommitHash: m.CommitHash, UncommittedChanges: m.UncommittedChanges,
				CurrentlyDeployed: deployed[n+"/"+m.Version], JobNames: []string{}}
			for _, j := range m.Jobs {
				v.JobNames = append(v.JobNames, j.Name)
			}
			sr.Versions = append(sr.Versions, v)
		}
		out = append(out, sr)
	}
	writeJSON(w, http.StatusOK, out)
}

// matchPackages is POST /packages/matches: which of a release's packages
// the Director has, so the CLI leaves them out of the upload.
func (s *Server) matchPackages(w http.ResponseWriter, r *http.Request) {
	if s.noReleases(w) {
		return
	}
	var m releasestore.Manifest
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err == nil {
		err = yaml.Unmarshal(raw, &m)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, codeValidation, "Invalid release manifest: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.cfg.Releases.Matches(m))
}

// uploadRelease is POST /releases with the tarball as body: it is saved,
// then checked and kept by the task.
func (s *Server) uploadRelease(w http.ResponseWriter, r *http.Request) {
	if s.noReleases(w) {
		return
	}
	var f *os.File
	err := os.MkdirAll(s.cfg.Releases.Dir, 0o700)
	if err == nil {
		f, err = os.CreateTemp(s.cfg.Releases.Dir, "upload-*.tgz")
	}
	if err == nil {
		_, err = io.Copy(f, http.MaxBytesReader(w, r.Body, maxRelease))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		if f != nil {
			_ = os.Remove(f.Name())
		}
		writeError(w, http.StatusBadRequest, codeReleaseInvalid, "Receiving the release: "+err.Error())
		return
	}
	meta := s.taskMeta(r, "create release", "")
	meta.timeout = deployTimeout
	t := s.tasks.start(meta, func(ctx context.Context, t *task) (string, []byte, error) {
		defer os.Remove(f.Name())
		var m releasestore.Manifest
		err := t.step("Extracting release", "Extracting release", 1, 1, func() error {
			in, err := os.Open(f.Name())
			if err != nil {
				return err
			}
			defer in.Close()
			m, err = s.cfg.Releases.Upload(in)
			return err
		})
		if err != nil {
			return "", nil, err
		}
		_ = t.step("Release has been created", m.Name+"/"+m.Version, 1, 1, func() error { return nil })
		return fmt.Sprintf("Created release '%s/%s'", m.Name, m.Version), nil, nil
	})
	s.redirectToTask(w, r, t)
}

// listConfigs is GET /configs: the lab has no cloud, runtime or deploy
// configs.
func (s *Server) listConfigs(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []any{})
}

// deployManifest is what a deploy reads of a manifest.
type deployManifest struct {
	Name     string `yaml:"name"`
	Releases []struct {
		Name    string `yaml:"name"`
		Version string `yaml:"version"`
	} `yaml:"releases"`
	InstanceGroups []struct {
		Name string `yaml:"name"`
		Jobs []struct {
			Name    string `yaml:"name"`
			Release string `yaml:"release"`
		} `yaml:"jobs"`
	} `yaml:"instance_groups"`
}

// diff is POST /deployments/NAME/diff: the manifest's lines against the
// deployed one's, as the Director's diff marks them.
func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeValidation, err.Error())
		return
	}
	var old []string
	if d, ok := s.deployment(r.PathValue("name")); ok {
		old = strings.Split(strings.TrimRight(d.Manifest, "\n"), "\n")
	}
	lines := [][]any{}
	for _, l := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		state := ""
		if !slices.Contains(old, l) {
			state = "added"
		}
		lines = append(lines, []any{l, state})
	}
	writeJSON(w, http.StatusOK, map[string]any{"context": map[string]any{"cloud_config_ids": []int{}, "runtime_config_ids": []int{}}, "diff": lines})
}

// deploy is POST /deployments with the manifest as body.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	if s.noReleases(w) {
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	var m deployManifest
	if err == nil {
		err = yaml.Unmarshal(raw, &m)
	}
	if err != nil || !boshname.Valid(m.Name) {
		writeError(w, http.StatusBadRequest, codeValidation, fmt.Sprintf("Invalid manifest: a deployment name (letters, digits, '-', '_', '.') is required (%v)", err))
		return
	}
	meta := s.taskMeta(r, "create deployment", m.Name)
	meta.timeout = deployTimeout
	t := s.tasks.start(meta, func(ctx context.Context, t *task) (string, []byte, error) {
		return s.runDeploy(ctx, t, m, raw)
	})
	s.redirectToTask(w, r, t)
}

// runDeploy compiles what the manifest's jobs need, lays the deployment
// out as a lab deployment directory and has the Deployer start it.
func (s *Server) runDeploy(ctx context.Context, t *task, m deployManifest, raw []byte) (string, []byte, error) {
	unlock, err := s.lockDeployment(m.Name)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	s.deploying.Lock()
	defer s.deploying.Unlock()
	dir := filepath.Join(s.layouts(m.Name), fmt.Sprintf("task-%d", t.id))
	summary, err := s.deployIn(ctx, t, m, raw, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
	}
	return summary, nil, err
}

func (s *Server) deployIn(ctx context.Context, t *task, m deployManifest, raw []byte, dir string) (string, error) {
	var releases map[string]releasestore.Manifest
	var jobs map[string][]string
	if err := t.step("Preparing deployment", "Preparing deployment", 1, 1, func() (err error) {
		releases, jobs, err = s.resolveReleases(m)
		return err
	}); err != nil {
		return "", err
	}
	for name, rm := range releases {
		err := s.cfg.Releases.Compile(ctx, rm, jobs[name], func(label string, work func() error) error {
			return t.step("Compiling packages", label, 1, 1, work)
		})
		if err == nil {
			err = s.cfg.Releases.Layout(rm, jobs[name], filepath.Join(dir, "releases", name))
		}
		if err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.yml"), raw, 0o644); err != nil {
		return "", err
	}
	var previous *model.Deployment
	if d, ok := s.deployment(m.Name); ok {
		previous = &d
	}
	d, err := s.cfg.Deployer.Deploy(ctx, dir, previous)
	if err != nil {
		return "", err
	}
	for i, inst := range d.Instances {
		_ = t.step("Updating instance", fmt.Sprintf("%s: %s/%s (%d)", inst.Group, inst.Group, inst.ID, inst.Index), i+1, len(d.Instances), func() error { return nil })
	}
	if err := s.setDeployment(m.Name, &d); err != nil {
		return "", err
	}
	// Earlier layouts served the instances this one replaced.
	old, _ := filepath.Glob(filepath.Join(s.layouts(m.Name), "task-*"))
	for _, o := range old {
		if o != dir {
			_ = os.RemoveAll(o)
		}
	}
	return "/deployments/" + m.Name, nil
}

// resolveReleases finds the manifest's releases (latest: the newest
// uploaded) and the jobs its instance groups take from each.
func (s *Server) resolveReleases(m deployManifest) (map[string]releasestore.Manifest, map[string][]string, error) {
	releases := map[string]releasestore.Manifest{}
	for _, rel := range m.Releases {
		var rm releasestore.Manifest
		var err error
		if rel.Version == "latest" || rel.Version == "" {
			rm, err = s.cfg.Releases.Latest(rel.Name)
		} else {
			rm, err = s.cfg.Releases.Manifest(rel.Name, rel.Version)
		}
		if err != nil {
			return nil, nil, err
		}
		releases[rel.Name] = rm
	}
	jobs := map[string][]string{}
	for _, g := range m.InstanceGroups {
		for _, j := range g.Jobs {
			if _, ok := releases[j.Release]; !ok {
				return nil, nil, fmt.Errorf("Instance group '%s' references an unknown release '%s'", g.Name, j.Release)
			}
			if !slices.Contains(jobs[j.Release], j.Name) {
				jobs[j.Release] = append(jobs[j.Release], j.Name)
			}
		}
	}
	return releases, jobs, nil
}

// layouts is where the deployment's layouts (one per deploy task) are.
func (s *Server) layouts(deployment string) string {
	return filepath.Join(s.cfg.Releases.Dir, "deployments", deployment)
}

// deleteDeployment is DELETE /deployments/NAME.
func (s *Server) deleteDeployment(w http.ResponseWriter, r *http.Request) {
	d, ok := s.findDeployment(w, r)
	if !ok || s.noReleases(w) {
		return
	}
	meta := s.taskMeta(r, "delete deployment "+d.Name, d.Name)
	t := s.tasks.start(meta, func(ctx context.Context, t *task) (string, []byte, error) {
		unlock, err := s.lockDeployment(d.Name)
		if err != nil {
			return "", nil, err
		}
		defer unlock()
		s.deploying.Lock()
		defer s.deploying.Unlock()
		d, ok := s.deployment(d.Name) // as the deploys before this one left it
		if !ok {
			return "", nil, fmt.Errorf("Deployment '%s' doesn't exist", d.Name)
		}
		if err := t.step("Deleting instances", d.Name, 1, 1, func() error { return s.cfg.Deployer.Delete(ctx, d) }); err != nil {
			return "", nil, err
		}
		if err := s.setDeployment(d.Name, nil); err != nil {
			return "", nil, err
		}
		_ = os.RemoveAll(s.layouts(d.Name))
		return "/deployments/" + d.Name, nil, nil
	})
	s.redirectToTask(w, r, t)
}
