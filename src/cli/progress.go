package cli

import (
	"io"
	"os"

	"golang.org/x/term"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/orchestrator"
	"github.com/bbr-release/bbr/src/progress"
)

// terminal gives a backup's or a restore's log output and its meter: on
// a terminal, live progress bars with the log lines printed above them;
// elsewhere (a pipe, a file, CI, an errand) and for the other commands,
// which copy nothing, today's lines. stop ends the bars; call it before
// anything else is printed.
func (s session) terminal(c *cli.Context) (out io.Writer, meter orchestrator.Meter, stop func()) {
	f, ok := s.streams.Out.(*os.File)
	copies := c.Command.Name == "backup" || c.Command.Name == "restore"
	if !ok || !copies || !term.IsTerminal(int(f.Fd())) || os.Getenv("TERM") == "dumb" {
		return s.streams.Out, nil, func() {}
	}
	bars := progress.New(f)
	return bars, bars, bars.Stop
}
