package director

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/bbr-release/bbr/src/lab/model"
)

// vmInfo is one line of the vms?format=full and instances?format=full task
// results, shaped like the Director's (bosh-cli director/vms.go VMInfo).
type vmInfo struct {
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
	DNS                []string       `json:"dns"`
	AZ                 string         `json:"az"`
	VMCID              string         `json:"vm_cid"`
	VMType             string         `json:"vm_type"`
	ResourcePool       string         `json:"resource_pool"`
	DiskCID            *string        `json:"disk_cid"`
	DiskCIDs           []string       `json:"disk_cids"`
	Ignore             bool           `json:"ignore"`
	ResurrectionPaused bool           `json:"resurrection_paused"`
	VMCreatedAt        string         `json:"vm_created_at"`
	CloudProperties    map[string]any `json:"cloud_properties"`
	Stemcell           stemcellInfo   `json:"stemcell"`
	Processes          []processInfo  `json:"processes"`
	Vitals             vitals         `json:"vitals"`
	// ExpectsVM is only in instances output.
	ExpectsVM *bool `json:"expects_vm,omitempty"`
}

type stemcellInfo struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	APIVersion int    `json:"api_version"`
}

// processInfo is one job's process. The Director lists them per VM, and
// bosh-cli shows an instance as running only if it lists some.
type processInfo struct {
	Name   string         `json:"name"`
	State  string         `json:"state"`
	Uptime map[string]int `json:"uptime"`
	Mem    map[string]any `json:"mem"`
	CPU    map[string]any `json:"cpu"`
}

// vitals are reported as zeros: the lab's instances share the host, so
// per-instance figures would mean nothing.
type vitals struct {
	CPU    map[string]string            `json:"cpu"`
	Disk   map[string]map[string]string `json:"disk"`
	Load   []string                     `json:"load"`
	Mem    map[string]string            `json:"mem"`
	Swap   map[string]string            `json:"swap"`
	Uptime map[string]int               `json:"uptime"`
}

// vmBrief is one entry of GET /deployments/NAME/vms (or instances) without
// format=full, which the Director answers directly rather than as a task.
type vmBrief struct {
	AgentID     string   `json:"agent_id"`
	CID         string   `json:"cid"`
	Job         string   `json:"job"`
	Index       int      `json:"index"`
	ID          string   `json:"id"`
	AZ          string   `json:"az"`
	IPs         []string `json:"ips"`
	VMCreatedAt string   `json:"vm_created_at"`
	Active      *bool    `json:"active,omitempty"`
	ExpectsVM   *bool    `json:"expects_vm,omitempty"`
}

func (s *Server) vms(w http.ResponseWriter, r *http.Request)       { s.listVMs(w, r, false) }
func (s *Server) instances(w http.ResponseWriter, r *http.Request) { s.listVMs(w, r, true) }

// listVMs is GET /deployments/NAME/vms and /instances: with format=full a
// task whose result is one JSON object per line, otherwise a JSON array.
func (s *Server) listVMs(w http.ResponseWriter, r *http.Request, instances bool) {
	d, ok := s.findDeployment(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("format") != "full" {
		out := make([]vmBrief, 0, len(d.Instances))
		for _, inst := range d.Instances {
			out = append(out, s.vmBrief(inst, instances))
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	t := s.tasks.start(s.taskMeta(r, "retrieve vm-stats", d.Name), func(_ context.Context, _ *task) (string, []byte, error) {
		var out []byte
		for _, inst := range d.Instances {
			line, err := json.Marshal(s.vmInfo(d.Name, inst, instances))
			if err != nil {
				return "", nil, fmt.Errorf("encoding instance %s: %w", inst.Slug(), err)
			}
			out = append(append(out, line...), '\n')
		}
		return "", out, nil
	})
	s.redirectToTask(w, r, t)
}

func (s *Server) vmInfo(deployment string, inst model.Instance, instances bool) vmInfo {
	m := s.summary(deployment)
	stemcell := stemcellInfo{Name: "bosh-lab-ubuntu-jammy-go_agent", Version: resolvedStemcellVersion, APIVersion: 3}
	if len(m.stemcells) > 0 {
		stemcell.Name, stemcell.Version = m.stemcells[0].Name, m.stemcells[0].Version
	}
	uptime := int(time.Since(s.started).Seconds())
	procs := make([]processInfo, 0, len(inst.Jobs))
	for _, job := range inst.Jobs {
		procs = append(procs, processInfo{
			Name: job, State: "running", Uptime: map[string]int{"secs": uptime},
			Mem: map[string]any{"kb": 0, "percent": 0.0}, CPU: map[string]any{"total": 0.0},
		})
	}
	info := vmInfo{
		AgentID: agentID(inst), JobName: inst.Group, ID: inst.ID, Index: inst.Index, Bootstrap: inst.Bootstrap,
		JobState: "running", ProcessState: "running", State: "started", Active: true,
		IPs: []string{inst.IP}, DNS: []string{}, AZ: inst.AZ, VMCID: vmCID(inst),
		VMType: m.vmTypes[inst.Group], ResourcePool: m.vmTypes[inst.Group], DiskCIDs: []string{},
		VMCreatedAt: s.started.UTC().Format(time.RFC3339), CloudProperties: map[string]any{},
		Stemcell: stemcell, Processes: procs,
		Vitals: vitals{
			CPU:  map[string]string{"sys": "0.0", "user": "0.0", "wait": "0.0"},
			Disk: map[string]map[string]string{"system": {"percent": "0", "inode_percent": "0"}},
			Load: []string{"0.00", "0.00", "0.00"},
			Mem:  map[string]string{"kb": "0", "percent": "0"}, Swap: map[string]string{"kb": "0", "percent": "0"},
			Uptime: map[string]int{"secs": uptime},
		},
	}
	if instances {
		info.ExpectsVM = ptr(true)
	}
	return info
}

func (s *Server) vmBrief(inst model.Instance, instances bool) vmBrief {
	b := vmBrief{
		AgentID: agentID(inst), CID: vmCID(inst), Job: inst.Group, Index: inst.Index, ID: inst.ID,
		AZ: inst.AZ, IPs: []string{inst.IP}, VMCreatedAt: s.started.UTC().Format(time.RFC3339),
	}
	if instances {
		b.ExpectsVM = ptr(true)
	} else {
		b.Active = ptr(true)
	}
	return b
}

// agentID is stable per instance and, as on a real Director, differs from
// the instance ID.
func agentID(inst model.Instance) string { return nameUUID("agent", inst.ID) }

func vmCID(inst model.Instance) string { return "lab-vm-" + inst.ID }

func ptr[T any](v T) *T { return &v }
