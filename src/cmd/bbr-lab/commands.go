package main

import (
	"os"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/labctl"
)

// The operator's commands on a running lab, besides up.

func downCommand() cli.Command {
	return cli.Command{
		Name:  "down",
		Usage: "stop the lab and remove everything it made",
		Description: `Stops the Director daemon and every instance (running each job's bin/stop,
   then ending every process left in the instance's namespace), deletes the lab's SSH
   users and sudoers files and empties the lab directory. Safe to run twice, and after
   a crash: without lab.json it still finds the lab's processes, users and files.

EXIT STATUS
   0 everything is gone; 1 something could not be removed (the message says what).`,
		Flags:  []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error { return labctl.Down(c.String("dir"), os.Stdout) },
	}
}

func statusCommand() cli.Command {
	return cli.Command{
		Name:  "status",
		Usage: "show whether the lab's Director and instances are up",
		Description: `EXIT STATUS
   0 the lab is up and every part answers; 1 the lab is down or a part does not answer.`,
		Flags:  []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error { return labctl.Status(c.String("dir"), os.Stdout) },
	}
}

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
			return labctl.SSH(c.String("dir"), []string(c.Args()))
		},
	}
}

func operatorKeyCommand() cli.Command {
	return cli.Command{
		Name:      "operator-key",
		Usage:     "give an operator SSH access to an instance, as a BOSH Director VM's jumpbox user (for `bbr director`)",
		ArgsUsage: "DEPLOYMENT GROUP/INDEX OUT_DIR",
		Description: `Creates the user "jumpbox" with passwordless sudo on the instance and writes
   OUT_DIR/id_ed25519 (the private key, 0600) and OUT_DIR/known_hosts (the
   instance's host key). Then, for a director-like instance:
     bbr director --host IP --username jumpbox --private-key-path OUT_DIR/id_ed25519 \
       --known-hosts OUT_DIR/known_hosts backup
   bbr-lab down removes the user.`,
		Flags: []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error {
			return labctl.OperatorKey(c.String("dir"), c.Args(), os.Stdout)
		},
	}
}

func runErrandCommand() cli.Command {
	return cli.Command{
		Name:      "run-errand",
		Usage:     "run a job's bin/run on the instances that have it, as `bosh run-errand` does",
		ArgsUsage: "DEPLOYMENT JOB",
		Description: `Runs /var/vcap/jobs/JOB/bin/run as root inside each instance of DEPLOYMENT that
   has JOB (colocated errands included), one instance after another, with the
   agent's clean environment and its output on this terminal. The job's templates
   were rendered when the lab started (see DEPLOYMENT_DIR layout in "up").

EXIT STATUS
   0 when bin/run succeeded everywhere; 1 otherwise.`,
		Flags: []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error {
			return labctl.RunErrand(c.String("dir"), c.Args(), os.Stdout, os.Stderr)
		},
	}
}
