package director

import (
	"context"
	"encoding/json"
	"net/http"

	yaml "go.yaml.in/yaml/v2"

	"github.com/bbr-release/bbr/src/lab/model"
)

type nameVersion struct {
	Name    string `json:"name" yaml:"name"`
	Version string `json:"version" yaml:"version"`
}

type deploymentResp struct {
	Name        string        `json:"name"`
	CloudConfig string        `json:"cloud_config"`
	Releases    []nameVersion `json:"releases"`
	Stemcells   []nameVersion `json:"stemcells"`
	Teams       []string      `json:"teams"`
}

func (s *Server) listDeployments(w http.ResponseWriter, _ *http.Request) {
	out := []deploymentResp{}
	for _, d := range s.cfg.Lab.Deployments {
		var m struct {
			Releases  []nameVersion `yaml:"releases"`
			Stemcells []struct {
				OS      string `yaml:"os"`
				Version string `yaml:"version"`
			} `yaml:"stemcells"`
		}
		_ = yaml.Unmarshal([]byte(d.Manifest), &m)
		resp := deploymentResp{Name: d.Name, CloudConfig: "none", Releases: m.Releases, Stemcells: []nameVersion{}, Teams: []string{}}
		if resp.Releases == nil {
			resp.Releases = []nameVersion{}
		}
		for _, sc := range m.Stemcells {
			resp.Stemcells = append(resp.Stemcells, nameVersion{Name: "bosh-lab-" + sc.OS, Version: sc.Version})
		}
		out = append(out, resp)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	if d, ok := s.findDeployment(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]string{"manifest": d.Manifest})
	}
}

// vmResp is one line of the vms?format=full task result, shaped like the
// Director's (bosh-cli director/vms.go VMInfoResp).
type vmResp struct {
	AgentID            string         `json:"agent_id"`
	JobName            string         `json:"job_name"`
	ID                 string         `json:"id"`
	Index              int            `json:"index"`
	Bootstrap          bool           `json:"bootstrap"`
	JobState           string         `json:"job_state"`
	ProcessState       string         `json:"process_state"`
	State              string         `json:"state"`
	Active             bool           `json:"active"`
	IPs                []string       `json:"ips"`
	Deployment         string         `json:"deployment_name"`
	AZ                 string         `json:"az"`
	VMCID              string         `json:"vm_cid"`
	VMType             string         `json:"vm_type"`
	DiskCID            string         `json:"disk_cid"`
	DiskCIDs           []string       `json:"disk_cids"`
	Ignore             bool           `json:"ignore"`
	ResurrectionPaused bool           `json:"resurrection_paused"`
	VMCreatedAt        string         `json:"vm_created_at"`
	Processes          []any          `json:"processes"`
	Vitals             map[string]any `json:"vitals"`
}

func (s *Server) vms(w http.ResponseWriter, r *http.Request) {
	d, ok := s.findDeployment(w, r)
	if !ok {
		return
	}
	user, _ := s.authenticate(r)
	t := s.tasks.start("retrieve vm-stats", d.Name, user, func(context.Context) ([]byte, error) {
		var out []byte
		for _, inst := range d.Instances {
			line, err := json.Marshal(vmFor(d, inst))
			if err != nil {
				return nil, err
			}
			out = append(append(out, line...), '\n')
		}
		return out, nil
	})
	redirectToTask(w, r, t)
}

func vmFor(d model.Deployment, inst model.Instance) vmResp {
	return vmResp{
		AgentID: "agent-" + inst.ID, JobName: inst.Group, ID: inst.ID, Index: inst.Index, Bootstrap: inst.Bootstrap,
		JobState: "running", ProcessState: "running", State: "started", Active: true,
		IPs: []string{inst.IP}, Deployment: d.Name, AZ: inst.AZ, VMCID: "vm-" + inst.ID, VMType: "default",
		DiskCIDs: []string{}, VMCreatedAt: "2026-01-01T00:00:00Z", Processes: []any{},
		Vitals: map[string]any{
			"cpu": map[string]string{"sys": "0.0", "user": "0.0", "wait": "0.0"}, "load": []string{"0.00", "0.00", "0.00"},
			"mem": map[string]string{"kb": "0", "percent": "0"}, "swap": map[string]string{"kb": "0", "percent": "0"},
			"disk": map[string]any{"system": map[string]string{"percent": "0", "inode_percent": "0"}},
		},
	}
}
