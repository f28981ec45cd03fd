package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/model"
)

func sshCommand() cli.Command {
	return cli.Command{
		Name:      "ssh",
		Usage:     "run a command inside an instance (as root, through nsenter, not sshd)",
		ArgsUsage: "DEPLOYMENT GROUP/INDEX|GROUP/ID [-- CMD [ARG ...]]",
		Description: `Runs CMD (default: an interactive bash) in the instance's mount and UTS
   namespaces, so /var/vcap is the instance's. For demos and tests, e.g.
     bbr-lab ssh sample redis/0 -- redis-cli -h 127.77.1.10 GET k

EXIT STATUS
   CMD's exit status; 1 if the instance cannot be entered.`,
		Flags: []cli.Flag{dirFlag},
		// Everything after the instance belongs to CMD, flags included.
		SkipArgReorder: true,
		Action: func(c *cli.Context) error {
			return runSSH(c.String("dir"), []string(c.Args()))
		},
	}
}

func runSSH(dirFlag string, args []string) error {
	if err := requireRoot("ssh"); err != nil {
		return err
	}
	if len(args) < 2 {
		return errors.New("usage: bbr-lab ssh DEPLOYMENT GROUP/INDEX [-- CMD ...]")
	}
	dir, err := labDirPath(dirFlag)
	if err != nil {
		return err
	}
	lab, err := model.Load(dir)
	if err != nil {
		return err
	}
	inst, err := findInstance(lab, args[0], args[1])
	if err != nil {
		return err
	}
	command := args[2:]
	if len(command) > 0 && command[0] == "--" {
		command = command[1:]
	}
	if len(command) == 0 {
		command = []string{"/bin/bash", "-l"}
	}
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

// findInstance resolves GROUP/INDEX or GROUP/ID in deployment.
func findInstance(lab model.Lab, deployment, slug string) (model.Instance, error) {
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
