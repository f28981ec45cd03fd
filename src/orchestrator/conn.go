package orchestrator

import (
	"context"
	"io"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/instance"
)

// The interfaces below are what the workflows ask of one connected
// instance, grouped by use: the script contract's side of it
// (src/instance.Conn), in typed calls. Each helper takes only the group it
// uses; an Instance holds the composition, InstanceConn. Staging names are
// a job's, or a backup-one-restore-all artifact's.

// JobScripts finds the bbr scripts an instance's jobs ship and runs them.
type JobScripts interface {
	// IsWindows says whether the scripts cannot run: they are shell
	// scripts.
	IsWindows(ctx context.Context) (bool, error)
	FindScripts(ctx context.Context) (instance.Scripts, error)
	RunScript(ctx context.Context, run instance.ScriptRun) error
}

// StagingClaim says which run holds the staging directory, and takes it
// for this one, so that two runs never share it.
type StagingClaim interface {
	ClaimStaging(ctx context.Context, owner string) (claimed bool, holder *instance.Holder, err error)
	CheckStaging(ctx context.Context) (*instance.Holder, error)
	// UserActive says whether the holder's SSH user still has a session.
	UserActive(ctx context.Context, user string) (bool, error)
	StagingRoot() string
}

// Staging makes and removes the directories the scripts stage backups in.
type Staging interface {
	StagingRoot() string
	StagingDir(name string) string
	MakeStagingDir(ctx context.Context, name string) error
	RemoveStagingDir(ctx context.Context, name string) error
	RemoveStaging(ctx context.Context) error
}

// Transfer copies a staged backup off the instance or onto it, and hashes
// what is staged, so that both sides can be compared.
type Transfer interface {
	Checksums(ctx context.Context, name string) (artifact.Checksums, error)
	StreamOut(ctx context.Context, name string, w io.Writer) error
	StreamIn(ctx context.Context, name string, r io.Reader) error
}

// InstanceConn is one connection to an instance, as a Finder makes it:
// every group above, and Close, which a Finder's Release calls.
type InstanceConn interface {
	JobScripts
	StagingClaim
	Staging
	Transfer
	io.Closer
}
