package labctl

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/bbr-release/bbr/src/lab/labdir"
	"github.com/bbr-release/bbr/src/lab/model"
)

// SSH replaces this process with CMD (args[2:], after an optional "--";
// default an interactive bash) inside the instance args[1] of deployment
// args[0], through nsenter rather than sshd.
func SSH(dirFlag string, args []string) error {
	if err := RequireRoot("ssh"); err != nil {
		return err
	}
	if len(args) < 2 {
		return errors.New("usage: bbr-lab ssh DEPLOYMENT GROUP/INDEX [-- CMD ...]")
	}
	dir, err := labdir.Path(dirFlag)
	if err != nil {
		return err
	}
	lab, err := model.Load(dir)
	if err != nil {
		return err
	}
	inst, err := FindInstance(lab, args[0], args[1])
	if err != nil {
		return err
	}
	return enter(inst, command(args[2:]))
}

// command is what ssh runs: the arguments after "--", or a login shell.
func command(args []string) []string {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return []string{"/bin/bash", "-l"}
	}
	return args
}

// enter execs nsenter into the running instance's namespaces.
func enter(inst model.Instance, command []string) error {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", inst.SSHDPid))
	if err != nil || ns != inst.MountNS {
		return fmt.Errorf("instance %s/%d is not running (its sshd, pid %d, is gone)", inst.Group, inst.Index, inst.SSHDPid)
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("finding nsenter: %w", err)
	}
	argv := append([]string{nsenter, "-t", strconv.Itoa(inst.SSHDPid), "-m", "-u", "--"}, command...)
	// Exec, not a child: the terminal, signals and exit status are CMD's.
	if err := syscall.Exec(nsenter, argv, os.Environ()); err != nil {
		return fmt.Errorf("executing nsenter: %w", err)
	}
	return nil
}
