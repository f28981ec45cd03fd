// Package labctl holds what each bbr-lab command does (up, down, status,
// ssh, run-errand, operator-key, director-serve), given its flags' values
// and arguments: cmd/bbr-lab only parses the command line and calls here.
package labctl

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bbr-release/bbr/src/lab/labdir"
	"github.com/bbr-release/bbr/src/lab/model"
)

// RequireRoot explains why a command needs root instead of failing later
// on the first mount or useradd.
func RequireRoot(what string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s must run as root (it uses namespaces, sshd, useradd and sudoers); try: sudo bbr-lab %s", what, what)
	}
	return nil
}

// load is the start of every command on a running lab: root, exactly the
// arguments usage names, and the lab's description from dir.
func load(dir, command, usage string, args []string) (model.Lab, error) {
	if err := RequireRoot(command); err != nil {
		return model.Lab{}, err
	}
	if len(args) != len(strings.Fields(usage)) {
		return model.Lab{}, fmt.Errorf("usage: bbr-lab %s %s", command, usage)
	}
	dir, err := labdir.Path(dir)
	if err != nil {
		return model.Lab{}, err
	}
	return model.Load(dir)
}

// selfPath is the bbr-lab binary, re-executed for instance-init and
// director-serve and given to job scripts as $LAB_BIN.
func selfPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the bbr-lab binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	return self, nil
}

// FindInstance resolves GROUP/INDEX or GROUP/ID in deployment.
func FindInstance(lab model.Lab, deployment, slug string) (model.Instance, error) {
	d, ok := lab.Find(deployment)
	if !ok {
		return model.Instance{}, fmt.Errorf("no deployment %q in the lab", deployment)
	}
	group, which, ok := strings.Cut(slug, "/")
	if !ok {
		return model.Instance{}, fmt.Errorf("instance %q: want GROUP/INDEX or GROUP/ID", slug)
	}
	for _, inst := range d.Instances {
		if inst.Group == group && (strconv.Itoa(inst.Index) == which || inst.ID == which) {
			return inst, nil
		}
	}
	return model.Instance{}, fmt.Errorf("no instance %s in deployment %s", slug, deployment)
}
