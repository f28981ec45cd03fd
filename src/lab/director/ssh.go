package director

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/bbr-release/bbr/src/lab/model"
)

// sshReq is the body of POST /deployments/NAME/ssh (bosh-cli director/ssh.go).
type sshReq struct {
	Command        string `json:"command"`
	DeploymentName string `json:"deployment_name"`
	Target         struct {
		Job     string   `json:"job"`
		Indexes []string `json:"indexes"`
		IDs     []string `json:"ids"`
	} `json:"target"`
	Params map[string]string `json:"params"`
}

// sshResult is one instance's line of the task result.
type sshResult struct {
	Command       string `json:"command"`
	Status        string `json:"status"`
	IP            string `json:"ip"`
	HostPublicKey string `json:"host_public_key"`
	ID            string `json:"id"`
	Index         int    `json:"index"`
	Job           string `json:"job"`
	GatewayUser   string `json:"gateway_user"`
	GatewayHost   string `json:"gateway_host"`
	Error         string `json:"error,omitempty"`
}

func (s *Server) ssh(w http.ResponseWriter, r *http.Request) {
	d, ok := s.findDeployment(w, r)
	if !ok {
		return
	}
	var req sshReq
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, 40000, "invalid ssh request: "+err.Error())
		return
	}
	if req.Command != "setup" && req.Command != "cleanup" {
		writeError(w, http.StatusBadRequest, 40000, fmt.Sprintf("unknown ssh command %q", req.Command))
		return
	}
	user, _ := s.authenticate(r)
	t := s.tasks.start("ssh: "+req.Command, d.Name, user, func(ctx context.Context) ([]byte, error) {
		return s.runSSH(ctx, d, req)
	})
	redirectToTask(w, r, t)
}

// runSSH asks the agent of every targeted instance, in parallel.
func (s *Server) runSSH(ctx context.Context, d model.Deployment, req sshReq) ([]byte, error) {
	targets := targeted(d, req)
	if len(targets) == 0 {
		return nil, fmt.Errorf("no instances of deployment '%s' match job '%s' %v", d.Name, req.Target.Job, req.Target.IDs)
	}
	results := make([]sshResult, len(targets))
	var wg sync.WaitGroup
	for i, inst := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if req.Command == "setup" {
				err = s.cfg.Agent.SetUpSSH(ctx, d.Name, inst, req.Params["user"], req.Params["public_key"])
			} else {
				err = s.cfg.Agent.CleanUpSSH(ctx, d.Name, inst, req.Params["user_regex"])
			}
			results[i] = sshResult{Command: req.Command, Status: "success", IP: inst.IP, HostPublicKey: inst.HostPublicKey,
				ID: inst.ID, Index: inst.Index, Job: inst.Group}
			if err != nil {
				results[i].Status, results[i].Error = "failure", err.Error()
			}
		}()
	}
	wg.Wait()
	out, err := json.Marshal(results)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, res := range results {
		if res.Error != "" {
			errs = append(errs, fmt.Errorf("%s/%s: %s", res.Job, res.ID, res.Error))
		}
	}
	if len(errs) == len(results) {
		return out, errors.Join(errs...)
	}
	return out, nil
}

// targeted selects instances as the Director does: a job (instance
// group) or all, and indexes or ids (empty = every instance).
func targeted(d model.Deployment, req sshReq) []model.Instance {
	var out []model.Instance
	for _, inst := range d.Instances {
		if req.Target.Job != "" && inst.Group != req.Target.Job {
			continue
		}
		all := len(req.Target.Indexes) == 0 && len(req.Target.IDs) == 0
		if all || slices.Contains(req.Target.IDs, inst.ID) || slices.Contains(req.Target.Indexes, strconv.Itoa(inst.Index)) {
			out = append(out, inst)
		}
	}
	return out
}
