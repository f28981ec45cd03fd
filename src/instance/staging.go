package instance

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/bbr-release/bbr/src/remote"
)

// ownerFile, in the staging root, names the run that created it.
const ownerFile = ".bbr-owner"

// Holder is the run that holds an instance's staging directory, as its
// owner file says (Owner is empty when there is none: an older bbr, or
// upstream, made the directory).
type Holder struct{ Owner string }

// OwnerText is what a run writes into the owner file: its SSH user (none
// in director mode, where the run uses the operator's own) and when it
// started. User reads the user back.
func OwnerText(user string, started time.Time) string {
	at := started.UTC().Format(time.RFC3339)
	if user == "" {
		return "bbr run, started " + at
	}
	return fmt.Sprintf("bbr run of SSH user %s, started %s", user, at)
}

// holderUser finds the run's SSH user in its owner text.
var holderUser = regexp.MustCompile(`SSH user (bosh_[0-9a-f]+),`)

// User is the SSH user of the holding run, "" when the owner file names
// none.
func (h *Holder) User() string {
	if m := holderUser.FindStringSubmatch(h.Owner); m != nil {
		return m[1]
	}
	return ""
}

// ClaimStaging creates the staging root (root's, 0711: no one else may list
// it, and a job's 0700 directory in it may be handed to the job's user)
// atomically with an owner file saying owner (OwnerText). It reports
// whether this call created it, or else who holds it. An answer it does
// not recognise is an error: the directory is then "not ours", never
// "free".
func (c *Conn) ClaimStaging(ctx context.Context, owner string) (claimed bool, holder *Holder, err error) {
	script := `mkdir -p "$(dirname "$1")"
if mkdir -m 0711 "$1" 2>/dev/null; then echo claimed; printf '%s' "$2" > "$1/` + ownerFile + `" || true
elif [ -e "$1" ]; then echo exists; cat "$1/` + ownerFile + `" 2>/dev/null; true
fi`
	state, rest, err := c.askStaging(ctx, script, owner)
	switch {
	case err != nil:
		return false, nil, err
	case state == "claimed":
		return true, nil, nil
	case state == "exists":
		return false, &Holder{Owner: rest}, nil
	}
	return false, nil, c.unexpected("claiming", state, rest)
}

// CheckStaging reports who holds the staging root, nil when it does not
// exist. It changes nothing.
func (c *Conn) CheckStaging(ctx context.Context) (*Holder, error) {
	script := `if [ -e "$1" ]; then echo exists; cat "$1/` + ownerFile + `" 2>/dev/null; true; else echo free; fi`
	state, rest, err := c.askStaging(ctx, script, "")
	switch {
	case err != nil:
		return nil, err
	case state == "free":
		return nil, nil
	case state == "exists":
		return &Holder{Owner: rest}, nil
	}
	return nil, c.unexpected("checking", state, rest)
}

func (c *Conn) askStaging(ctx context.Context, script, owner string) (state, rest string, err error) {
	var out bytes.Buffer
	if err := c.r.Run(ctx, sudoSh(script, c.StagingRoot(), owner), nil, &out); err != nil {
		return "", "", fmt.Errorf("checking %s: %w", c.StagingRoot(), err)
	}
	state, rest, _ = strings.Cut(out.String(), "\n")
	return strings.TrimSpace(state), strings.TrimSpace(rest), nil
}

func (c *Conn) unexpected(what, state, rest string) error {
	answer := strings.TrimSpace(state + "\n" + rest)
	return fmt.Errorf("%s %s: unexpected answer %q from the instance, so bbr treats it as another run's and leaves it alone", what, c.StagingRoot(), truncate(answer, 200))
}

// MakeStagingDir creates one job's staging directory (0700) for its backup
// script.
func (c *Conn) MakeStagingDir(ctx context.Context, name string) error {
	dir, err := c.stagingDir(name)
	if err != nil {
		return err
	}
	if err := c.r.Run(ctx, sudoSh(`mkdir -p -m 0700 "$1"`, dir), nil, nil); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}

// RemoveStagingDir removes one job's staging directory.
func (c *Conn) RemoveStagingDir(ctx context.Context, name string) error {
	dir, err := c.stagingDir(name)
	if err != nil {
		return err
	}
	return c.remove(ctx, dir)
}

// RemoveStaging removes the whole staging root.
func (c *Conn) RemoveStaging(ctx context.Context) error { return c.remove(ctx, c.StagingRoot()) }

func (c *Conn) remove(ctx context.Context, dir string) error {
	root := c.StagingRoot()
	if path.Clean(dir) != dir || dir != root && !strings.HasPrefix(dir, root+"/") {
		return fmt.Errorf("refusing to remove %q: not under %s", dir, c.StagingRoot())
	}
	return c.r.Run(ctx, "sudo rm -rf -- "+remote.Quote(dir), nil, nil)
}
