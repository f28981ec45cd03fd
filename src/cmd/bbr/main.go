// Command bbr backs up and restores BOSH deployments; a drop-in
// replacement for upstream BOSH Backup and Restore.
package main

import (
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/bbr-release/bbr/src/cli"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	// Memory must not grow with the number of transfers: a soft limit makes
	// the GC collect before the heap doubles. GOMEMLIMIT overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
	// A reader of bbr's output that goes away (an errand's tee or a
	// pipeline's, signalled with bbr when the errand or Ctrl-C stops the
	// process group) must not kill bbr half way: Go's default for a write
	// to a closed stdout or stderr pipe is death by SIGPIPE, before any
	// unlock or cleanup. Ignored, the write fails and bbr carries on.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(cli.Run(version, os.Args, cli.Streams{Out: os.Stdout, Err: os.Stderr}))
}
