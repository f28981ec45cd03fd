// Package instance speaks bbr's side of the release-author script contract
// to one BOSH instance over a command runner (an SSH connection): it finds
// the jobs' bbr scripts, runs them as root, claims the staging directory,
// streams artifacts out and in, and checksums them.
//
// Every shell command bbr sends an instance is built here, from names that
// passed boshname's checks and arguments that are quoted; the workflows
// call typed methods and never write shell themselves.
package instance

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/remote"
)

// Runner runs commands on one instance (one SSH connection).
type Runner interface {
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error
	Close() error
}

// Root is /var/vcap on a BOSH VM: the script contract's paths are under it.
const Root = "/var/vcap"

// stagingPath is the staging root under the contract's root.
const stagingPath = "/store/bbr-backup"

// DefaultStagingRoot is the staging root on a BOSH VM.
const DefaultStagingRoot = Root + stagingPath

// Conn is the protocol on one connection.
type Conn struct {
	r    Runner
	root string
}

// New speaks the protocol over r, with the contract's paths under Root.
func New(r Runner) *Conn { return NewAt(r, Root) }

// NewAt is New for a machine whose /var/vcap is elsewhere (root is an
// absolute path; a local test tree, for instance).
func NewAt(r Runner, root string) *Conn { return &Conn{r: r, root: root} }

// Close closes the connection.
func (c *Conn) Close() error { return c.r.Close() }

// JobsDir is where jobs live: <root>/jobs/<job>/bin/bbr/<script>.
func (c *Conn) JobsDir() string { return path.Join(c.root, "jobs") }

// StagingRoot is the directory bbr stages artifacts in on the instance.
func (c *Conn) StagingRoot() string { return path.Join(c.root, stagingPath) }

// StagingDir is where one job's (or backup-one-restore-all artifact's)
// backup script writes and restore script reads.
func (c *Conn) StagingDir(name string) string { return path.Join(c.StagingRoot(), name) }

// stagingDir is StagingDir for a name that goes into a command: it must be
// a BOSH name, so that it cannot be "..", an option or shell.
func (c *Conn) stagingDir(name string) (string, error) {
	if err := boshname.Check("staging directory", name); err != nil {
		return "", err
	}
	return c.StagingDir(name), nil
}

// IsWindows asks the instance's shell, as upstream does: cmd.exe expands
// %OS% to Windows_NT, a POSIX shell prints it unchanged.
func (c *Conn) IsWindows(ctx context.Context) (bool, error) {
	var out bytes.Buffer
	if err := c.r.Run(ctx, "echo %OS%", nil, &out); err != nil {
		return false, fmt.Errorf("checking the instance's operating system: %w", err)
	}
	return strings.TrimSpace(out.String()) == "Windows_NT", nil
}

// UserActive says whether the user has processes on the instance: a run
// that holds an SSH connection does, one that died (even if its user was
// never removed) does not. An error means it could not tell.
func (c *Conn) UserActive(ctx context.Context, user string) (bool, error) {
	var out bytes.Buffer
	script := `if id -u "$1" >/dev/null 2>&1 && ps -o pid= -u "$1" | grep -q .; then echo active; else echo gone; fi`
	if err := c.r.Run(ctx, sudoSh(script, user), nil, &out); err != nil {
		return false, fmt.Errorf("checking whether %s is still logged in: %w", user, err)
	}
	switch strings.TrimSpace(out.String()) {
	case "active":
		return true, nil
	case "gone":
		return false, nil
	}
	return false, fmt.Errorf("checking whether %s is still logged in: unexpected answer %q", user, truncate(out.String(), 200))
}

// sudoSh is a command that runs script as root under sh, with args as its
// positional parameters, every part quoted.
func sudoSh(script string, args ...string) string {
	cmd := "sudo sh -c " + remote.Quote(script) + " sh"
	for _, a := range args {
		cmd += " " + remote.Quote(a)
	}
	return cmd
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
