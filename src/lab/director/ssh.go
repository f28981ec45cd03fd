package director

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bbr-release/bbr/src/lab/model"
)

// sshReq is the body of POST /deployments/NAME/ssh (bosh-cli director/ssh.go).
type sshReq struct {
	Command        string    `json:"command"`
	DeploymentName string    `json:"deployment_name"`
	Target         sshTarget `json:"target"`
	Params         sshParams `json:"params"`
}

// sshTarget selects instances: a group (empty: every group), and indexes
// or IDs within it (both empty: every instance). bosh-cli puts the one
// index-or-ID it was given in both lists.
type sshTarget struct {
	Job     string   `json:"job"`
	Indexes []string `json:"indexes"`
	IDs     []string `json:"ids"`
}

// sshParams are setup's user and public_key, or cleanup's user_regex.
// bosh-cli also sends a password for setup, which the lab, like a
// Director with key-only VMs, ignores.
type sshParams struct {
	User      string `json:"user"`
	PublicKey string `json:"public_key"`
	UserRegex string `json:"user_regex"`
}

// sshResult is one instance's entry in the task result, a JSON array.
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

// ssh is POST /deployments/NAME/ssh: a task that asks the agent of every
// targeted instance to set up or clean up an SSH user.
func (s *Server) ssh(w http.ResponseWriter, r *http.Request) {
	d, ok := s.findDeployment(w, r)
	if !ok {
		return
	}
	var req sshReq
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, codeValidation, "Invalid ssh request: "+err.Error())
		return
	}
	if req.Command != "setup" && req.Command != "cleanup" {
		writeError(w, http.StatusBadRequest, codeValidation, fmt.Sprintf("Unknown ssh command '%s'", req.Command))
		return
	}
	if s.injectSSHFault(w, r, d.Name, req) {
		return
	}
	t := s.tasks.start(s.taskMeta(r, "ssh: "+req.Command+":"+targetString(req.Target), d.Name), func(ctx context.Context, t *task) (string, []byte, error) {
		return s.runSSH(ctx, t, d, req)
	})
	s.redirectToTask(w, r, t)
}

// runSSH asks the agents of the targeted instances, in parallel. The task
// fails when the request is invalid, nothing matches, or every agent
// failed; if only some failed, their entries say so and bosh-cli reports it.
func (s *Server) runSSH(ctx context.Context, t *task, d model.Deployment, req sshReq) (string, []byte, error) {
	if err := checkSSHParams(req); err != nil {
		return "", nil, err
	}
	targets, err := s.targeted(d, req.Target)
	if err != nil {
		return "", nil, err
	}

	results := make([]sshResult, len(targets))
	var wg sync.WaitGroup
	for i, inst := range targets {
		wg.Go(func() {
			var err error
			if req.Command == "setup" {
				err = s.cfg.Agent.SetUpSSH(ctx, d.Name, inst, req.Params.User, req.Params.PublicKey)
			} else {
				err = s.cfg.Agent.CleanUpSSH(ctx, d.Name, inst, req.Params.UserRegex)
			}
			results[i] = sshResult{
				Command: req.Command, Status: "success", IP: inst.IP, HostPublicKey: inst.HostPublicKey,
				ID: inst.ID, Index: inst.Index, Job: inst.Group,
			}
			if err != nil {
				results[i].Status, results[i].Error = "failure", err.Error()
				t.logf("ssh %s on %s failed: %s", req.Command, inst.Slug(), err)
			} else {
				t.logf("ssh %s on %s succeeded", req.Command, inst.Slug())
			}
		})
	}
	wg.Wait()

	out, err := json.Marshal(results)
	if err != nil {
		return "", nil, fmt.Errorf("encoding ssh results: %w", err)
	}
	var failures []error
	for _, res := range results {
		if res.Error != "" {
			failures = append(failures, fmt.Errorf("%s/%s: %s", res.Job, res.ID, res.Error))
		}
	}
	if len(failures) == len(results) {
		return "", out, fmt.Errorf("ssh %s failed on every instance: %w", req.Command, errors.Join(failures...))
	}
	summary := fmt.Sprintf("ssh %s on %d of %d instances", req.Command, len(results)-len(failures), len(results))
	return summary, out, nil
}

// checkSSHParams refuses what no agent should be asked: a setup without
// user or key, or a cleanup without a regex (an empty one matches every
// user the lab made).
func checkSSHParams(req sshReq) error {
	p := req.Params
	if req.Command == "setup" {
		if p.User == "" || p.PublicKey == "" {
			return errors.New("ssh setup needs params user and public_key")
		}
		return nil
	}
	if p.UserRegex == "" {
		return errors.New("ssh cleanup needs param user_regex")
	}
	if _, err := regexp.Compile(p.UserRegex); err != nil {
		return fmt.Errorf("invalid user_regex: %w", err)
	}
	return nil
}

// targeted selects instances as the Director does; an instance matches a
// target entry by index (as a string) or by ID.
func (s *Server) targeted(d model.Deployment, target sshTarget) ([]model.Instance, error) {
	var inGroup, out []model.Instance
	for _, inst := range d.Instances {
		if target.Job == "" || inst.Group == target.Job {
			inGroup = append(inGroup, inst)
		}
	}
	if len(inGroup) == 0 {
		if target.Job == "" {
			return nil, fmt.Errorf("Deployment '%s' has no instances", d.Name)
		}
		if _, inManifest := s.summary(d.Name).vmTypes[target.Job]; inManifest {
			return nil, fmt.Errorf("Instance group '%s' has no instances in deployment '%s'", target.Job, d.Name)
		}
		return nil, fmt.Errorf("Instance group '%s' doesn't exist in deployment '%s'", target.Job, d.Name)
	}
	all := len(target.Indexes) == 0 && len(target.IDs) == 0
	for _, inst := range inGroup {
		if all || slices.Contains(target.IDs, inst.ID) || slices.Contains(target.Indexes, strconv.Itoa(inst.Index)) {
			out = append(out, inst)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("No instance '%s' in deployment '%s'", targetString(target), d.Name)
	}
	return out, nil
}

// targetString names a target the way bosh slugs do: group/index-or-id.
func targetString(target sshTarget) string {
	name := target.Job
	if name == "" {
		name = "*"
	}
	var ids []string
	for _, id := range slices.Concat(target.IDs, target.Indexes) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return name
	}
	return name + "/" + strings.Join(ids, ",")
}
