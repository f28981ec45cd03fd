package main

import (
	"os"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/deploy"
	"github.com/bbr-release/bbr/src/lab/labctl"
)

func upCommand() cli.Command {
	return cli.Command{
		Name:      "up",
		Usage:     "start a lab: instances for each deployment, then the Director API",
		ArgsUsage: "[DEPLOYMENT_DIR ...]",
		Description: `Starts, as root, one instance per instance group member of each deployment
   (an sshd on its own 127.x.y.z:22 in its own mount namespace, where /var/vcap is the
   instance's directory, with the jobs started), then the Director API on
   https://DIRECTOR_ADDRESS with a CA written to DIR/ca.pem. Credentials for bosh and bbr
   are written to DIR/director.env (source it).

   With no DEPLOYMENT_DIR, starts the embedded sample deployment (redis, postgres, api);
   "sample" among the DEPLOYMENT_DIRs (when no such directory exists) names it too.
   ` + deploy.Layout + `

EXIT STATUS
   0 the lab is up; 1 it is not (nothing is left running unless the message says so).`,
		Flags: []cli.Flag{
			dirFlag,
			cli.StringFlag{Name: "director-address", Value: "127.0.0.1:25555", Usage: "host:port of the Director API"},
			cli.StringFlag{Name: "uaa-address", Value: "127.0.0.1:8443", Usage: "host:port of the UAA token endpoint (--auth uaa)"},
			cli.StringFlag{Name: "auth", Value: "basic", Usage: "Director authentication: basic or uaa"},
			cli.StringFlag{Name: "subnet", Value: "127.77", Usage: "first two octets of the instances' addresses"},
			cli.StringFlag{Name: "compile-cache", EnvVar: "BBR_LAB_COMPILE_CACHE",
				Usage: "directory keeping the packages `bosh upload-release` releases compile to, across labs (one compilation per package version)"},
		},
		Action: func(c *cli.Context) error {
			return labctl.Up(labctl.UpOptions{
				Dir:             c.String("dir"),
				DirectorAddress: c.String("director-address"),
				UAAAddress:      c.String("uaa-address"),
				Auth:            c.String("auth"),
				Subnet:          c.String("subnet"),
				CompileCache:    c.String("compile-cache"),
				Deployments:     c.Args(),
			}, os.Stdout, os.Stderr)
		},
	}
}
