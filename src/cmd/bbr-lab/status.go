package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/model"
)

func statusCommand() cli.Command {
	return cli.Command{
		Name:  "status",
		Usage: "show whether the lab's Director and instances are up",
		Description: `EXIT STATUS
   0 the lab is up and every part answers; 1 the lab is down or a part does not answer.`,
		Flags:  []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error { return runStatus(c.String("dir"), os.Stdout) },
	}
}

func runStatus(dirFlag string, out io.Writer) error {
	dir, err := labDirPath(dirFlag)
	if err != nil {
		return err
	}
	lab, err := model.Load(dir)
	if err != nil {
		return err
	}
	healthy := true
	ca, err := os.ReadFile(lab.Director.CACertPath)
	state := "up"
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = directorInfo(ctx, lab.Director, ca)
		cancel()
	}
	if err != nil {
		state, healthy = "DOWN ("+err.Error()+")", false
	}
	fmt.Fprintf(out, "Director  https://%s %s%s\n\n", lab.Director.Address, state, directorPidNote(dir))
	printInstances(out, lab, func(inst model.Instance) string {
		s := instanceState(inst)
		if s != "running" {
			healthy = false
		}
		return s
	})
	if !healthy {
		return fmt.Errorf("the lab in %s is not fully up", dir)
	}
	return nil
}

func directorPidNote(dir string) string {
	raw, err := os.ReadFile(filepath.Join(dir, directorPid))
	if err != nil {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || !isDirectorServe(pid, dir) {
		return " (daemon not running)"
	}
	return fmt.Sprintf(" (pid %d)", pid)
}

// instanceState is "running" when the recorded sshd still lives in the
// recorded namespace and accepts connections.
func instanceState(inst model.Instance) string {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", inst.SSHDPid))
	if err != nil || ns != inst.MountNS {
		return "sshd DEAD"
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(inst.IP, "22"), time.Second)
	if err != nil {
		return "sshd not answering"
	}
	conn.Close()
	return "running"
}

// printInstances writes one line per instance; state, if given, adds a
// column.
func printInstances(out io.Writer, lab model.Lab, state func(model.Instance) string) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := "DEPLOYMENT\tINSTANCE\tID\tIP\tAZ\tJOBS"
	if state != nil {
		header += "\tSTATE"
	}
	fmt.Fprintln(tw, header)
	for _, d := range lab.Deployments {
		for _, inst := range d.Instances {
			name := fmt.Sprintf("%s/%d", inst.Group, inst.Index)
			if inst.Bootstrap {
				name += "*"
			}
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", d.Name, name, inst.ID, inst.IP, inst.AZ, strings.Join(inst.Jobs, ","))
			if state != nil {
				line += "\t" + state(inst)
			}
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
}
