package instance

import (
	"io"
	"time"

	"github.com/bbr-release/bbr/src/lab/model"
)

// Spec is what Start needs to bring one instance up.
type Spec struct {
	// LabDir is the lab directory; the instance's state goes under
	// LabDir/instances/<deployment>/<group>-<index>.
	LabDir     string
	Deployment string
	// Instance gives Group, Index, ID, Bootstrap, AZ, IP and Jobs. Start
	// returns it with Root, HostPublicKey, SSHDPid and MountNS filled in.
	Instance model.Instance
	// Jobs has one entry per name in Instance.Jobs.
	Jobs map[string]Job
	// Windows makes the instance answer SSH commands as a Windows
	// stemcell's cmd.exe would (see windowsShell).
	Windows bool
	// LabBin is the bbr-lab binary. Start re-executes it as
	// `LabBin instance-init --spec FILE` inside the new namespaces, and job
	// scripts find it as $LAB_BIN.
	LabBin string
	// StartTimeout bounds each job's bin/start; zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Job is one job of an instance.
type Job struct {
	// Source is the release's job directory on the host
	// (<deployment dir>/releases/<release>/jobs/<job>).
	Source string
	// Properties are the job's manifest properties, written to
	// /var/vcap/jobs/<job>/config/properties.json.
	Properties map[string]any
}

// DefaultStartTimeout bounds a job's bin/start when Spec.StartTimeout is 0.
// Postgres' first initdb takes about two seconds; a minute leaves room for
// a loaded machine without hanging `bbr-lab up` forever.
const DefaultStartTimeout = 60 * time.Second

// initSpec is what instance-init reads inside the new namespaces. It only
// holds host paths and names, so the namespace side needs no lab.json.
type initSpec struct {
	Hostname     string        `json:"hostname"`
	Root         string        `json:"root"`
	Hosts        string        `json:"hosts"`
	Jobs         []string      `json:"jobs"`
	SSHDConfig   string        `json:"sshd_config"`
	StartTimeout time.Duration `json:"start_timeout"`
	// HostMountNS is the mount namespace of the process that wrote the
	// spec: instance-init refuses to mount anything if it is still in it.
	HostMountNS string `json:"host_mount_ns"`
}
