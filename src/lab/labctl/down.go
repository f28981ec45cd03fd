package labctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bbr-release/bbr/src/lab/agent"
	"github.com/bbr-release/bbr/src/lab/deploy"
	"github.com/bbr-release/bbr/src/lab/directord"
	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/labdir"
	"github.com/bbr-release/bbr/src/lab/model"
)

// Down stops the Director and every instance, removes the lab's users and
// empties the lab directory. It also works without lab.json (after a
// crash, or a half-done up), by finding what the lab leaves behind.
func Down(dirFlag string, out io.Writer) error {
	if err := RequireRoot("down"); err != nil {
		return err
	}
	dir, err := labdir.Path(dirFlag)
	if err != nil {
		return err
	}
	if err := stopEverything(dir, out); err != nil {
		// Keep the state (and logs) for the next attempt.
		return fmt.Errorf("the lab in %s is not fully down:\n%w", dir, err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 && !labdir.IsLab(dir) {
		fmt.Fprintf(out, "warning: %s has no %s marker, so it is not a lab directory: its files were left alone\n", dir, labdir.Marker)
	}
	if err := labdir.RemoveContents(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "lab in %s is down\n", dir)
	return nil
}

// stopEverything stops the Director, the instances lab.json knows and
// those it does not, deletes the SSH users and detaches stray mounts.
// It goes on past failures, so that one stuck part leaves the least.
func stopEverything(dir string, out io.Writer) error {
	var errs []error
	if n, err := directord.Stop(dir); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		fmt.Fprintln(out, "director stopped")
	}
	lab := loadForDown(dir, out)
	if err := deploy.StopAll(lab, out); err != nil {
		errs = append(errs, err)
	}
	// Whatever lab.json did not know about (a crashed or half-done up).
	if n, err := instance.Sweep(dir); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		fmt.Fprintf(out, "ended %d leftover instance namespace(s)\n", n)
	}
	if err := agent.SweepAll(lab); err != nil {
		errs = append(errs, err)
	}
	if err := labdir.UnmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loadForDown reads lab.json, warning when it exists but does not load;
// without it, down sweeps an empty lab.
func loadForDown(dir string, out io.Writer) model.Lab {
	lab, err := model.Load(dir)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, model.FileName)); statErr == nil {
			fmt.Fprintf(out, "warning: %v; sweeping without it\n", err)
		}
		return model.Lab{Dir: dir}
	}
	return lab
}
