// Package model is the lab's description of what is running: the director's
// settings and the deployments with their instances. `bbr-lab up` writes it to
// <lab dir>/lab.json; the director API and `bbr-lab down` read it back.
package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// FileName is the name of the lab description inside the lab directory.
const FileName = "lab.json"

// Lab is everything `bbr-lab up` started.
type Lab struct {
	// Dir is the lab directory (state, keys, instance roots, logs).
	Dir         string       `json:"dir"`
	Director    Director     `json:"director"`
	Deployments []Deployment `json:"deployments"`
	// Subnet is the first two octets of the instances' addresses.
	Subnet string `json:"subnet"`
	// CompileCache keeps compiled release packages across labs; empty:
	// none.
	CompileCache string `json:"compile_cache,omitempty"`
}

// Director holds how the lab's Director API is reached and authenticated.
type Director struct {
	// Address is host:port of the HTTPS Director API, e.g. 127.0.0.1:25555.
	Address string `json:"address"`
	// UAAAddress is host:port of the UAA token endpoint (same CA), used
	// when Auth is "uaa".
	UAAAddress string `json:"uaa_address"`
	// Auth is "basic" or "uaa".
	Auth         string `json:"auth"`
	Client       string `json:"client"`
	ClientSecret string `json:"client_secret"`
	// CACertPath is the PEM file of the CA that signed the API certificate.
	CACertPath string `json:"ca_cert_path"`
}

// Deployment is one BOSH deployment of the lab.
type Deployment struct {
	Name string `json:"name"`
	// Manifest is the raw manifest YAML, returned by GET /deployments/NAME.
	Manifest  string     `json:"manifest"`
	Instances []Instance `json:"instances"`
}

// Instance is one "VM": an sshd on its own loopback address, in its own
// mount namespace where /var/vcap is Root.
type Instance struct {
	Group     string `json:"group"`
	Index     int    `json:"index"`
	ID        string `json:"id"`
	Bootstrap bool   `json:"bootstrap"`
	AZ        string `json:"az"`
	// IP is the instance's loopback address; sshd listens on IP:22.
	IP string `json:"ip"`
	// HostPublicKey is the sshd host key in authorized_keys format
	// ("ssh-ed25519 AAAA..."), as the Director returns it on SSH setup.
	HostPublicKey string `json:"host_public_key"`
	// Root is the host directory bind-mounted at /var/vcap inside the
	// instance's mount namespace.
	Root string `json:"root"`
	// Jobs are the job names on this instance, in manifest order.
	Jobs []string `json:"jobs"`
	// SSHDPid is the pid of the instance's sshd (the namespace's init).
	SSHDPid int `json:"sshd_pid"`
	// MountNS is the instance's mount namespace, as readlink
	// /proc/PID/ns/mnt prints it ("mnt:[4026532301]"); `down` kills every
	// process in it even when the sshd is gone.
	MountNS string `json:"mount_ns"`
}

// Slug is "group/id", the way bbr names instances in logs.
func (i Instance) Slug() string { return i.Group + "/" + i.ID }

// Load reads the lab description from dir.
func Load(dir string) (Lab, error) {
	var lab Lab
	raw, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return lab, fmt.Errorf("reading lab description: %w (is the lab up? run bbr-lab up)", err)
	}
	if err := json.Unmarshal(raw, &lab); err != nil {
		return lab, fmt.Errorf("parsing %s: %w", filepath.Join(dir, FileName), err)
	}
	return lab, nil
}

// Save writes the lab description to lab.Dir, readable by root only (it
// holds the Director's client secret).
func Save(lab Lab) error {
	raw, err := json.MarshalIndent(lab, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding lab description: %w", err)
	}
	f, err := os.CreateTemp(lab.Dir, FileName+".*.tmp") // 0600
	if err != nil {
		return fmt.Errorf("writing lab description: %w", err)
	}
	_, err = f.Write(raw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(lab.Dir, FileName))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("writing lab description: %w", err)
	}
	return nil
}

// Find returns the deployment with the given name.
func (l Lab) Find(name string) (Deployment, bool) {
	for _, d := range l.Deployments {
		if d.Name == name {
			return d, true
		}
	}
	return Deployment{}, false
}
