// Command bbr-lab runs a local stand-in for a BOSH environment: a Director
// API and instances that are real sshd servers in their own mount
// namespaces, running real job scripts. See src/lab/README.md.
//
// This package only parses the command line; what each command does is in
// src/lab/labctl and the lab's other packages.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli"
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
