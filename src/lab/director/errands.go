package director

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/bbr-release/bbr/src/lab/model"
)

// ErrandRunner does on an instance what a BOSH agent does for `bosh
// run-errand`: it runs the job's bin/run and packs the job's logs.
type ErrandRunner interface {
	// RunErrand runs /var/vcap/jobs/JOB/bin/run on inst until it exits or
	// ctx ends (then it is sent SIGTERM, as the agent does on cancel).
	RunErrand(ctx context.Context, inst model.Instance, job string) (ErrandResult, error)
}

// ErrandResult is one instance's run.
type ErrandResult struct {
	ExitCode       int
	Stdout, Stderr string
	// Logs is a .tgz of /var/vcap/sys/log/JOB.
	Logs []byte
}

// errandTimeout bounds an errand task: a backup runs as long as it needs.
const errandTimeout = 24 * time.Hour

// errandResp is one line of an errand task's result (bosh-cli director
// errands.go ErrandRunResp).
type errandResp struct {
	Instance struct {
		Group string `json:"group"`
		ID    string `json:"id"`
	} `json:"instance"`
	ErrandName string `json:"errand_name"`
	ExitCode   int    `json:"exit_code"`
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	Logs       struct {
		BlobstoreID string `json:"blobstore_id"`
		SHA1        string `json:"sha1"`
	} `json:"logs"`
}

// isErrand says whether inst has job as an errand: a rendered bin/run, as
// a job's spec templates make it.
func isErrand(inst model.Instance, job string) bool {
	if !slices.Contains(inst.Jobs, job) {
		return false
	}
	info, err := os.Stat(filepath.Join(inst.Root, "jobs", job, "bin", "run"))
	return err == nil && info.Mode().IsRegular()
}

// listErrands is GET /deployments/NAME/errands: every errand job of the
// deployment's instances, colocated ones included, once.
func (s *Server) listErrands(w http.ResponseWriter, r *http.Request) {
	d, ok := s.findDeployment(w, r)
	if !ok {
		return
	}
	out := []map[string]string{}
	var seen []string
	for _, inst := range d.Instances {
		for _, job := range inst.Jobs {
			if !slices.Contains(seen, job) && isErrand(inst, job) {
				seen = append(seen, job)
				out = append(out, map[string]string{"name": job})
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// errandReq is POST /deployments/NAME/errands/ERRAND/runs.
type errandReq struct {
	KeepAlive   bool `json:"keep-alive"`
	WhenChanged bool `json:"when-changed"`
	Instances   []struct {
		Group string `json:"group"`
		ID    string `json:"id"`
	} `json:"instances"`
}

// runErrand starts the errand task.
func (s *Server) runErrand(w http.ResponseWriter, r *http.Request) {
	d, ok := s.findDeployment(w, r)
	if !ok {
		return
	}
	var req errandReq
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, codeValidation, "Invalid errand request: "+err.Error())
		return
	}
	name := r.PathValue("errand")
	meta := s.taskMeta(r, fmt.Sprintf("run errand %s from deployment %s", name, d.Name), d.Name)
	meta.timeout = errandTimeout
	t := s.tasks.start(meta, func(ctx context.Context, t *task) (string, []byte, error) {
		return s.runErrandTask(ctx, t, d, name, req)
	})
	s.redirectToTask(w, r, t)
}

// errandTargets are the instances with the errand that the request selects
// (by group, or group and ID or index); no selection is all of them.
func errandTargets(d model.Deployment, name string, req errandReq) ([]model.Instance, error) {
	var with []model.Instance
	for _, inst := range d.Instances {
		if isErrand(inst, name) {
			with = append(with, inst)
		}
	}
	if len(with) == 0 {
		return nil, fmt.Errorf("Errand '%s' doesn't exist", name)
	}
	if len(req.Instances) == 0 {
		return with, nil
	}
	var out []model.Instance
	for _, f := range req.Instances {
		matched := false
		for _, inst := range with {
			if inst.Group == f.Group && (f.ID == "" || f.ID == inst.ID || f.ID == fmt.Sprint(inst.Index)) {
				matched = true
				if !slices.ContainsFunc(out, func(o model.Instance) bool { return o.ID == inst.ID }) {
					out = append(out, inst)
				}
			}
		}
		if !matched {
			slug := f.Group
			if f.ID != "" {
				slug += "/" + f.ID
			}
			return nil, fmt.Errorf("No instances match selection '%s' with errand '%s'", slug, name)
		}
	}
	return out, nil
}

// runErrandTask runs the errand on every target at once, as the Director
// does, and returns one result line per instance. An instance whose
// agent failed fails the task; a non-zero exit code does not (the client
// reports it).
func (s *Server) runErrandTask(ctx context.Context, t *task, d model.Deployment, name string, req errandReq) (string, []byte, error) {
	if s.cfg.Errands == nil {
		return "", nil, errors.New("this Director runs no errands")
	}
	unlock, err := s.lockDeployment(d.Name)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	var targets []model.Instance
	if err := t.step("Preparing deployment", "Preparing deployment", 1, 1, func() (err error) {
		targets, err = errandTargets(d, name, req)
		return err
	}); err != nil {
		return "", nil, err
	}
	lines := make([][]byte, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, inst := range targets {
		label := fmt.Sprintf("%s/%s (%d)", inst.Group, inst.ID, inst.Index)
		wg.Go(func() {
			var res ErrandResult
			if err := t.step("Running errand", label, i+1, len(targets), func() (err error) {
				res, err = s.cfg.Errands.RunErrand(ctx, inst, name)
				return err
			}); err != nil {
				errs[i] = fmt.Errorf("%s: %w", label, err)
				return
			}
			var resp errandResp
			resp.Instance.Group, resp.Instance.ID = inst.Group, inst.ID
			resp.ErrandName, resp.ExitCode, resp.Stdout, resp.Stderr = name, res.ExitCode, res.Stdout, res.Stderr
			if res.Logs != nil {
				resp.Logs.BlobstoreID, resp.Logs.SHA1 = s.blobs.put(res.Logs)
			}
			lines[i], _ = json.Marshal(resp)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", nil, err
	}
	var result []byte
	for _, l := range lines {
		result = append(append(result, l...), '\n')
	}
	return fmt.Sprintf("%d errand(s)", len(targets)), result, nil
}

// blobstore keeps errand logs for GET /resources/ID, as the Director's
// blobstore does.
type blobstore struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func (b *blobstore) put(data []byte) (id, sum string) {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	id = hex.EncodeToString(raw[:])
	h := sha1.Sum(data)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.blobs[id] = data
	return id, hex.EncodeToString(h[:])
}

// resource is GET /resources/ID: a blob, such as an errand's logs.
func (s *Server) resource(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.blobs.mu.Lock()
	data, ok := s.blobs.blobs[id]
	s.blobs.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, codeResourceNotFound, fmt.Sprintf("Resource '%s' not found", id))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
