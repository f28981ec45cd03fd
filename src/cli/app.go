// Package cli is bbr's command line: upstream's commands, flags,
// environment variables, output and exit codes, wired to the orchestrator.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/orchestrator"
)

// Streams are where the command writes.
type Streams struct {
	Out io.Writer
	Err io.Writer
}

// Run runs bbr with args (os.Args) and returns the process exit code.
func Run(version string, args []string, streams Streams) int {
	leftovers := &orchestrator.Leftovers{}
	ctx, stop := signalContext(streams.Err, leftovers)
	defer stop()
	// urfave/cli v1 would print exit errors and call os.Exit itself; Run
	// does both, after every deferred unlock and cleanup has run.
	cli.OsExiter = func(int) {}
	cli.ErrWriter = io.Discard
	notFound := false
	app := newApp(session{ctx: ctx, version: version, args: args, streams: streams, leftovers: leftovers})
	app.CommandNotFound = func(c *cli.Context, name string) {
		fmt.Fprintf(streams.Out, "Error command '%s' not found\n\n", name)
		_ = cli.ShowAppHelp(c)
		notFound = true
	}
	err := app.Run(args)
	if notFound {
		// Upstream exits 0 here, so a typo in a pipeline passes.
		return 1
	}
	if err != nil {
		if coder, ok := err.(cli.ExitCoder); ok {
			if msg := coder.Error(); msg != "" {
				fmt.Fprintln(streams.Err, msg)
			}
			return coder.ExitCode()
		}
		fmt.Fprintln(streams.Err, err)
		return 1
	}
	return 0
}

// newApp builds the urfave/cli v1 application: the same library upstream
// uses, so flag parsing, aliases and env vars behave identically.
// session is what every command of one bbr process shares.
type session struct {
	ctx       context.Context
	version   string
	args      []string // the command line, as Run was given it
	streams   Streams
	leftovers *orchestrator.Leftovers
}

func newApp(s session) *cli.App {
	streams := s.streams
	app := cli.NewApp()
	app.Name = "bbr"
	app.Usage = "BOSH Backup and Restore"
	app.Version = s.version
	// urfave/cli's own help command and --help/-h flag (upstream hides
	// them, so `bbr --help` is a usage error there, exit 1): help asked
	// for is shown and exits 0.
	app.HideHelp = false
	app.Writer = streams.Out
	app.ErrWriter = streams.Err
	app.Commands = []cli.Command{
		deploymentCommand(s),
		directorCommand(s),
		errandCommand(s),
		validateCommand(s),
		listCommand(s),
		exportCommand(s),
		{
			Name:    "version",
			Aliases: []string{"v"},
			Usage:   "Shows the version",
			Action: func(c *cli.Context) error {
				cli.ShowVersion(c)
				return nil
			},
		},
	}
	return app
}

// abortReport says what an immediate abort leaves and how to undo it.
func abortReport(left string) string {
	if left == "" {
		return "\nAborted. Nothing was left locked or staged by this run.\n"
	}
	return "\nAborted at once. Left behind:\n" + left +
		"Run `bbr deployment ... backup-cleanup` (or restore-cleanup; `bbr director ...` for the Director) to unlock and clean up.\n"
}

// signalContext is cancelled by the first SIGINT or SIGTERM: the workflows
// stop starting new work and still unlock and clean up (on a fresh
// context). A second signal exits at once, saying what may be left.
func signalContext(errOut io.Writer, leftovers *orchestrator.Leftovers) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig, ok := <-ch
		if !ok {
			return
		}
		fmt.Fprintf(errOut, "\nReceived %s: stopping, then unlocking and cleaning up. Send it again to abort at once (jobs may stay locked).\n", sig)
		cancel()
		if _, ok := <-ch; ok {
			fmt.Fprint(errOut, abortReport(leftovers.Report()))
			os.Exit(1)
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(ch)
		cancel()
	}
}
