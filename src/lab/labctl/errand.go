package labctl

import (
	"fmt"
	"io"
	"slices"

	"github.com/bbr-release/bbr/src/lab/agent"
	"github.com/bbr-release/bbr/src/lab/model"
)

// RunErrand runs the job args[1]'s bin/run in every instance of
// deployment args[0] that has it, one after another, with its output on
// stdout and stderr, as `bosh run-errand` does.
func RunErrand(dir string, args []string, stdout, stderr io.Writer) error {
	lab, err := load(dir, "run-errand", "DEPLOYMENT JOB", args)
	if err != nil {
		return err
	}
	return runErrand(lab, args[0], args[1], stdout, stderr)
}

func runErrand(lab model.Lab, deployment, job string, stdout, stderr io.Writer) error {
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
		fmt.Fprintf(stdout, "Running errand %s on %s/%d (%s)\n", job, inst.Group, inst.Index, inst.ID)
		cmd := agent.ErrandCommand(inst, job)
		cmd.SysProcAttr = nil // in the terminal's process group: ^C reaches it
		cmd.Stdout, cmd.Stderr = stdout, stderr
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
	fmt.Fprintf(stdout, "Errand %s succeeded on %d instance(s)\n", job, ran)
	return nil
}
