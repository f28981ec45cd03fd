package main

import (
	"errors"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/labctl"
	"github.com/bbr-release/bbr/src/lab/sample"
)

// The commands below are started by bbr-lab itself, never by an operator.

func directorServeCommand() cli.Command {
	return cli.Command{
		Name:   "director-serve",
		Hidden: true,
		Usage:  "serve the lab's Director API (started by bbr-lab up)",
		Flags:  []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error { return labctl.ServeDirector(c.String("dir")) },
	}
}

func instanceInitCommand() cli.Command {
	return cli.Command{
		Name:   "instance-init",
		Hidden: true,
		Usage:  "become an instance's sshd in its namespaces (started by bbr-lab up)",
		Flags:  []cli.Flag{cli.StringFlag{Name: "spec", Usage: "init spec written by bbr-lab up"}},
		Action: func(c *cli.Context) error {
			if c.String("spec") == "" {
				return errors.New("instance-init: --spec is required")
			}
			return instance.Init(c.String("spec"))
		},
	}
}

func sampleAPICommand() cli.Command {
	return cli.Command{
		Name:   "sample-api",
		Hidden: true,
		Usage:  "the sample deployment's API (started by the api job)",
		Flags: []cli.Flag{
			cli.StringFlag{Name: "listen", Usage: "host:port to serve on"},
			cli.StringFlag{Name: "maintenance-file", Usage: "answer 503 while this file exists"},
			cli.StringFlag{Name: "log", Usage: "append state changes to this file (default stderr)"},
			cli.StringFlag{Name: "pid-file", Usage: "write the pid here while running"},
		},
		Action: func(c *cli.Context) error {
			if c.String("listen") == "" || c.String("maintenance-file") == "" {
				return errors.New("sample-api: --listen and --maintenance-file are required")
			}
			return sample.RunAPI(sample.APIConfig{
				Listen:          c.String("listen"),
				MaintenanceFile: c.String("maintenance-file"),
				PidFile:         c.String("pid-file"),
			}, c.String("log"))
		},
	}
}
