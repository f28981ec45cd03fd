// Command bbr backs up and restores BOSH deployments; a drop-in
// replacement for upstream BOSH Backup and Restore.
package main

import (
	"os"

	"github.com/bbr-release/bbr/src/cli"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(cli.Run(version, os.Args, cli.Streams{Out: os.Stdout, Err: os.Stderr}))
}
