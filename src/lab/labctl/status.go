package labctl

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bbr-release/bbr/src/lab/directord"
	"github.com/bbr-release/bbr/src/lab/labdir"
	"github.com/bbr-release/bbr/src/lab/model"
)

// Status writes the Director's and each instance's state to out, and
// fails when any part is down.
func Status(dirFlag string, out io.Writer) error {
	dir, err := labdir.Path(dirFlag)
	if err != nil {
		return err
	}
	lab, err := model.Load(dir)
	if err != nil {
		return err
	}
	state, healthy := directorState(lab)
	fmt.Fprintf(out, "Director  https://%s %s%s\n\n", lab.Director.Address, state, directord.PidNote(dir))
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

// directorState is "up" when the Director answers /info with a
// certificate of the lab CA.
func directorState(lab model.Lab) (string, bool) {
	ca, err := os.ReadFile(lab.Director.CACertPath)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = directord.Info(ctx, lab.Director, ca)
		cancel()
	}
	if err != nil {
		return "DOWN (" + err.Error() + ")", false
	}
	return "up", true
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
