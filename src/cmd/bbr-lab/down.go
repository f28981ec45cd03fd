package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/agent"
	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/model"
)

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
		Action: func(c *cli.Context) error { return runDown(c.String("dir"), os.Stdout) },
	}
}

func runDown(dirFlag string, out io.Writer) error {
	if err := requireRoot("down"); err != nil {
		return err
	}
	dir, err := labDirPath(dirFlag)
	if err != nil {
		return err
	}
	var errs []error
	if n, err := stopDirector(dir); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		fmt.Fprintln(out, "director stopped")
	}
	lab, err := model.Load(dir)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, model.FileName)); statErr == nil {
			fmt.Fprintf(out, "warning: %v; sweeping without it\n", err)
		}
		lab = model.Lab{Dir: dir}
	}
	if err := stopAll(lab, out); err != nil {
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
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Keep the state (and logs) for the next attempt.
		return fmt.Errorf("the lab in %s is not fully down:\n%w", dir, errors.Join(errs...))
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 && !isLabDir(dir) {
		fmt.Fprintf(out, "warning: %s has no %s marker, so it is not a lab directory: its files were left alone\n", dir, markerFile)
	}
	if err := removeLabContents(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "lab in %s is down\n", dir)
	return nil
}

// unmountUnder detaches any mount below dir in our namespace. The lab only
// mounts inside instance namespaces, so this finds nothing unless someone
// mounted by hand; removing the directory through a mount would delete
// what it shows.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("reading mount table: %w", err)
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			targets = append(targets, fields[4])
		}
	}
	var errs []error
	// Deepest first.
	for i := len(targets) - 1; i >= 0; i-- {
		if err := syscall.Unmount(targets[i], syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", targets[i], err))
		}
	}
	return errors.Join(errs...)
}

// removeLabContents empties the lab directory and removes it, with the
// host's /var/vcap if up created it and it is empty. It only touches a
// directory that up marked as the lab's (up marks it before anything
// else), so a mistyped --dir never loses anyone's files.
func removeLabContents(dir string) error {
	if !isLabDir(dir) {
		return nil
	}
	_, vcapErr := os.Stat(filepath.Join(dir, varVcapMarker))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading lab directory: %w", err)
	}
	var errs []error
	for _, e := range entries {
		// The marker goes last: a failed removal must stay retryable.
		if e.Name() == markerFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", e.Name(), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if vcapErr == nil {
		_ = os.Remove("/var/vcap") // only if empty: never take anyone's files
	}
	if err := os.Remove(filepath.Join(dir, markerFile)); err != nil {
		return fmt.Errorf("removing %s: %w", markerFile, err)
	}
	_ = os.Remove(dir) // only if empty
	return nil
}

func isLabDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, markerFile))
	return err == nil
}
