// Package instance starts and stops one lab "VM": a host directory that is
// the instance's /var/vcap, and an sshd on the instance's own loopback
// address, running in its own mount and UTS namespaces where that directory
// is bind-mounted at /var/vcap and the hostname is the instance's.
package instance

import (
	"path/filepath"
	"strconv"

	"github.com/bbr-release/bbr/src/lab/model"
)

// InstancesDir is the folder of the lab directory that holds one state
// directory per instance: instances/<deployment>/<group>-<index>/.
const InstancesDir = "instances"

// Paths are the files of one instance on the host. Everything but Root stays
// outside /var/vcap, so nothing a job or an SSH user does inside the
// instance can touch the sshd's keys or config.
type Paths struct {
	// State is the instance's state directory; Root and the sshd files
	// live in it.
	State string
	// Root is bind-mounted at /var/vcap inside the instance.
	Root string
	// AuthorizedKeys holds one authorized_keys file per SSH user; sshd's
	// AuthorizedKeysFile points at <AuthorizedKeys>/%u.
	AuthorizedKeys string
	HostKey        string // ed25519, the one the Director reports
	ECDSAHostKey   string
	SSHDConfig     string
	PidFile        string
	// Log receives instance-init's messages and sshd's stderr.
	Log string
	// Hosts is bind-mounted over /etc/hosts inside the instance so that the
	// instance's hostname resolves (sudo warns on every call otherwise).
	Hosts string
	// InitSpec is the JSON file instance-init reads.
	InitSpec string
}

// PathsFor lays out the state directory of instance group/index of a
// deployment inside labDir.
func PathsFor(labDir, deployment, group string, index int) Paths {
	return pathsIn(filepath.Join(labDir, InstancesDir, deployment, Hostname(group, index)))
}

// PathsOf finds the files of a started instance from its Root, which is
// all lab.json needs to record.
func PathsOf(inst model.Instance) Paths {
	return pathsIn(filepath.Dir(inst.Root))
}

func pathsIn(state string) Paths {
	return Paths{
		State:          state,
		Root:           filepath.Join(state, "root"),
		AuthorizedKeys: filepath.Join(state, "authorized_keys"),
		HostKey:        filepath.Join(state, "ssh_host_ed25519_key"),
		ECDSAHostKey:   filepath.Join(state, "ssh_host_ecdsa_key"),
		SSHDConfig:     filepath.Join(state, "sshd_config"),
		PidFile:        filepath.Join(state, "sshd.pid"),
		Log:            filepath.Join(state, "instance.log"),
		Hosts:          filepath.Join(state, "hosts"),
		InitSpec:       filepath.Join(state, "init.json"),
	}
}

// Hostname is the instance's hostname inside its UTS namespace.
func Hostname(group string, index int) string {
	return group + "-" + strconv.Itoa(index)
}

// AuthorizedKeysFile is where sshd reads the keys of user on inst.
func AuthorizedKeysFile(inst model.Instance, user string) string {
	return filepath.Join(PathsOf(inst).AuthorizedKeys, user)
}

// HomeDir is the host path of user's home on inst; inside the instance it
// is /var/vcap/bosh_ssh/<user>, as on a BOSH VM.
func HomeDir(inst model.Instance, user string) string {
	return filepath.Join(inst.Root, "bosh_ssh", user)
}

// InstanceHome is user's home directory as seen inside every instance.
func InstanceHome(user string) string {
	return "/var/vcap/bosh_ssh/" + user
}
