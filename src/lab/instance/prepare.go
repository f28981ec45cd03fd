package instance

import (
	"github.com/bbr-release/bbr/src/lab/jobrender"

	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// rootDirs are created in every instance's /var/vcap, as on a stemcell.
var rootDirs = []string{"jobs", "store", "sys/log", "sys/run", "data", "bosh", "bosh_ssh"}

// prepare writes everything the instance needs before its sshd starts and
// returns the sshd host public key in authorized_keys format.
func prepare(s Spec, p Paths) (string, error) {
	// The state dir must be traversable (not listable) by SSH users: sshd
	// reads <AuthorizedKeys>/<user> with the user's uid.
	for _, dir := range []string{p.State, p.AuthorizedKeys} {
		if err := mkdirMode(dir, 0o711); err != nil {
			return "", err
		}
	}
	// Root is /var/vcap: 0755 like on a VM, so that daemons running as
	// other users (postgres) can reach /var/vcap/store.
	if err := mkdirMode(p.Root, 0o755); err != nil {
		return "", err
	}
	for _, d := range rootDirs {
		if err := mkdirMode(filepath.Join(p.Root, d), 0o755); err != nil {
			return "", err
		}
	}
	for _, name := range s.Instance.Jobs {
		job, ok := s.Jobs[name]
		if !ok {
			return "", fmt.Errorf("job %s of %s/%d has no release directory", name, s.Instance.Group, s.Instance.Index)
		}
		if err := installJob(p.Root, name, job, jobrender.For(s.Deployment, s.Instance)); err != nil {
			return "", err
		}
	}
	if err := writeInstanceEnv(s, p); err != nil {
		return "", err
	}
	pub, err := writeHostKeys(p.HostKey, p.ECDSAHostKey)
	if err != nil {
		return "", err
	}
	config := sshdConfig(s.Instance.IP, p)
	if s.Windows {
		shell := filepath.Join(p.State, "windows-shell")
		if err := os.WriteFile(shell, []byte(windowsShell), 0o755); err != nil {
			return "", fmt.Errorf("writing the Windows stand-in shell: %w", err)
		}
		config += "ForceCommand " + shell + "\n"
	}
	if err := os.WriteFile(p.SSHDConfig, []byte(config), 0o600); err != nil {
		return "", fmt.Errorf("writing sshd config: %w", err)
	}
	if err := writeHosts(p.Hosts, s.Instance.IP, Hostname(s.Instance.Group, s.Instance.Index)); err != nil {
		return "", err
	}
	return pub, writeInitSpec(s, p)
}

func mkdirMode(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	// MkdirAll's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("setting mode of %s: %w", dir, err)
	}
	return nil
}

// writeInstanceEnv writes /var/vcap/bosh/instance.env, which every job
// script sources to learn who it is (a BOSH VM's scripts get this from
// their rendered templates).
func writeInstanceEnv(s Spec, p Paths) error {
	inst := s.Instance
	vars := [][2]string{
		{"INSTANCE_GROUP", inst.Group},
		{"INSTANCE_INDEX", strconv.Itoa(inst.Index)},
		{"INSTANCE_ID", inst.ID},
		{"INSTANCE_IP", inst.IP},
		{"INSTANCE_BOOTSTRAP", strconv.FormatBool(inst.Bootstrap)},
		{"INSTANCE_AZ", inst.AZ},
		{"DEPLOYMENT", s.Deployment},
		{"LAB_BIN", s.LabBin},
	}
	var b strings.Builder
	b.WriteString("# Written by bbr-lab: who this instance is. Source it from job scripts.\n")
	for _, v := range vars {
		fmt.Fprintf(&b, "export %s=%s\n", v[0], shellQuote(v[1]))
	}
	file := filepath.Join(p.Root, "bosh", "instance.env")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// windowsShell stands in for cmd.exe on an instance of a Windows stemcell:
// it answers bbr's OS probe as Windows does and runs nothing else, so bbr
// must skip the instance.
const windowsShell = `#!/bin/sh
# Written by bbr-lab: this instance pretends to run a Windows stemcell.
case "$SSH_ORIGINAL_COMMAND" in
"echo %OS%") echo Windows_NT ;;
*) echo "'${SSH_ORIGINAL_COMMAND%% *}' is not recognized as an internal or external command, operable program or batch file." >&2; exit 1 ;;
esac
`

// sshdConfig is the instance's own sshd configuration: a VM-like sshd
// (default MaxStartups, keys only) whose keys and state live outside
// /var/vcap.
func sshdConfig(ip string, p Paths) string {
	return fmt.Sprintf(`# Written by bbr-lab.
ListenAddress %s:22
HostKey %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s/%%u
# Key files are root-made files in a lab directory, not in the user's home.
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
PrintMotd no
LogLevel INFO
Subsystem sftp internal-sftp
`, ip, p.HostKey, p.ECDSAHostKey, p.PidFile, p.AuthorizedKeys)
}

// writeHosts writes the instance's /etc/hosts: the host's entries plus the
// instance's own name, so that sudo can resolve the hostname.
func writeHosts(file, ip, hostname string) error {
	base, err := os.ReadFile("/etc/hosts")
	if err != nil {
		base = []byte("127.0.0.1\tlocalhost\n")
	}
	if len(base) > 0 && base[len(base)-1] != '\n' {
		base = append(base, '\n')
	}
	content := append(base, []byte(fmt.Sprintf("%s\t%s\n", ip, hostname))...)
	if err := os.WriteFile(file, content, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

func writeInitSpec(s Spec, p Paths) error {
	timeout := s.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	hostNS, err := mountNS(os.Getpid())
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(initSpec{
		Hostname:     Hostname(s.Instance.Group, s.Instance.Index),
		Root:         p.Root,
		Hosts:        p.Hosts,
		Jobs:         s.Instance.Jobs,
		SSHDConfig:   p.SSHDConfig,
		StartTimeout: timeout,
		HostMountNS:  hostNS,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding init spec: %w", err)
	}
	if err := os.WriteFile(p.InitSpec, raw, 0o600); err != nil {
		return fmt.Errorf("writing init spec: %w", err)
	}
	return nil
}
