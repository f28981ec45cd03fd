// Command bbr backs up and restores BOSH deployments; a drop-in
// replacement for upstream BOSH Backup and Restore.
package main

import (
	"os"
	"runtime/debug"

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
	os.Exit(cli.Run(version, os.Args, cli.Streams{Out: os.Stdout, Err: os.Stderr}))
}
