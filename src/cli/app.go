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
)

// Streams are where the command writes.
type Streams struct {
	Out io.Writer
	Err io.Writer
}

// Run runs bbr with args (os.Args) and returns the process exit code.
func Run(version string, args []string, streams Streams) int {
	ctx, stop := signalContext(streams.Err)
	defer stop()
	// urfave/cli v1 would print exit errors and call os.Exit itself; Run
	// does both, after every deferred unlock and cleanup has run.
	cli.OsExiter = func(int) {}
	cli.ErrWriter = io.Discard
	app := newApp(ctx, version, streams)
	if err := app.Run(args); err != nil {
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
func newApp(ctx context.Context, version string, streams Streams) *cli.App {
	app := cli.NewApp()
	app.Name = "bbr"
	app.Usage = "BOSH Backup and Restore"
	app.Version = version
	app.HideHelp = true
	app.Writer = streams.Out
	app.ErrWriter = streams.Err
	app.CommandNotFound = func(c *cli.Context, name string) {
		fmt.Fprintf(streams.Out, "Error command '%s' not found\n\n", name)
		_ = cli.ShowAppHelp(c)
	}
	app.Commands = []cli.Command{
		deploymentCommand(ctx, version, streams),
		directorCommand(ctx, version, streams),
		{
			Name:    "help",
			Aliases: []string{"h"},
			Usage:   "Shows a list of commands or help for one command",
			Action:  func(c *cli.Context) error { return cli.ShowAppHelp(c) },
		},
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

// signalContext is cancelled by the first SIGINT or SIGTERM: the workflows
// stop starting new work and still unlock and clean up (on a fresh
// context). A second signal exits at once, saying what may be left.
func signalContext(errOut io.Writer) (context.Context, func()) {
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
			fmt.Fprintln(errOut, "\nAborted. Jobs may still be locked and /var/vcap/store/bbr-backup may remain on instances: run `bbr deployment ... backup-cleanup` (or restore-cleanup).")
			os.Exit(1)
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(ch)
		cancel()
	}
}
