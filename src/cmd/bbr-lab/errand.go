package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/agent"
	"github.com/bbr-release/bbr/src/lab/model"
)

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
			lab, err := loadLab(c, "run-errand", "DEPLOYMENT JOB")
			if err != nil {
				return err
			}
			return runErrand(lab, c.Args()[0], c.Args()[1])
		},
	}
}

func runErrand(lab model.Lab, deployment, job string) error {
	d, ok := lab.Find(deployment)
	if !ok {
		return fmt.Errorf("no deployment %q in the lab", deployment)
	}
	var failed []string
	ran := 0
	for _, inst := range d.Instances {
		if !slices.Contains(inst.Jobs, job) {
			continue
		}
		ran++
		fmt.Printf("Running errand %s on %s/%d (%s)\n", job, inst.Group, inst.Index, inst.ID)
		cmd := agent.ErrandCommand(inst, job)
		cmd.SysProcAttr = nil // in the terminal's process group: ^C reaches it
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			failed = append(failed, fmt.Sprintf("%s/%d: %v", inst.Group, inst.Index, err))
		}
	}
	switch {
	case ran == 0:
		return fmt.Errorf("no instance of deployment %s has job %s", deployment, job)
	case len(failed) > 0:
		return fmt.Errorf("errand %s failed on %v", job, failed)
	}
	fmt.Printf("Errand %s succeeded on %d instance(s)\n", job, ran)
	return nil
}
