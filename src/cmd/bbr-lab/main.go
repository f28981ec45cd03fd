// Command bbr-lab runs a local stand-in for a BOSH environment: a Director
// API and instances that are real sshd servers in their own mount
// namespaces, running real job scripts. See src/lab/README.md.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/model"
)

func main() {
	app := cli.NewApp()
	app.Name = "bbr-lab"
	app.Usage = "a local BOSH environment for bbr: a Director API and sshd instances"
	app.HideVersion = true
	app.Commands = []cli.Command{
		upCommand(),
		downCommand(),
		statusCommand(),
		sshCommand(),
		operatorKeyCommand(),
		runErrandCommand(),
		directorServeCommand(),
		instanceInitCommand(),
		sampleAPICommand(),
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "bbr-lab: %v\n", err)
		os.Exit(1)
	}
}

// dirFlag is the lab directory flag every command shares.
var dirFlag = cli.StringFlag{
	Name:  "dir",
	Value: "/var/lib/bbr-lab",
	Usage: "lab directory: state, keys, instance roots and logs",
}

// requireRoot explains why a command needs root instead of failing later
// on the first mount or useradd.
func requireRoot(what string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s must run as root (it uses namespaces, sshd, useradd and sudoers); try: sudo bbr-lab %s", what, what)
	}
	return nil
}

// loadLab is the start of every command on a running lab: root, exactly
// the arguments usage names, and the lab's description from --dir.
func loadLab(c *cli.Context, command, usage string) (model.Lab, error) {
	if err := requireRoot(command); err != nil {
		return model.Lab{}, err
	}
	if c.NArg() != len(strings.Fields(usage)) {
		return model.Lab{}, fmt.Errorf("usage: bbr-lab %s %s", command, usage)
	}
	dir, err := labDirPath(c.String("dir"))
	if err != nil {
		return model.Lab{}, err
	}
	return model.Load(dir)
}
