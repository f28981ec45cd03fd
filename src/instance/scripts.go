package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/remote"
)

// The bbr script names.
const (
	PreBackupLock     = "pre-backup-lock"
	Backup            = "backup"
	PostBackupUnlock  = "post-backup-unlock"
	PreRestoreLock    = "pre-restore-lock"
	Restore           = "restore"
	PostRestoreUnlock = "post-restore-unlock"
	Metadata          = "metadata"
)

var knownScripts = map[string]bool{
	PreBackupLock: true, Backup: true, PostBackupUnlock: true,
	PreRestoreLock: true, Restore: true, PostRestoreUnlock: true,
	Metadata: true,
}

// ignoredJobs are legacy cf-mysql jobs whose scripts bbr must not run.
var ignoredJobs = map[string]bool{"mysql-backup": true, "mysql-restore": true}

// Scripts lists the bbr scripts of each job: job -> script -> true.
type Scripts map[string]map[string]bool

// FindScripts lists the bbr scripts on the instance, by job. A job whose
// directory name BOSH would not make is refused: its name reaches root
// commands and paths.
func (c *Conn) FindScripts(ctx context.Context) (Scripts, error) {
	var out bytes.Buffer
	// -print0 and an explicit test keep odd names and "no jobs" harmless.
	script := `for d in "$1"/*/bin/bbr; do [ -d "$d" ] && find "$d" -maxdepth 1 -type f -print0; done; true`
	if err := c.r.Run(ctx, sudoSh(script, c.JobsDir()), nil, &out); err != nil {
		return nil, fmt.Errorf("finding scripts: %w", err)
	}
	scripts := Scripts{}
	for _, p := range strings.Split(out.String(), "\x00") {
		if p == "" {
			continue
		}
		job, name, err := c.parseScriptPath(p)
		if err != nil {
			return nil, err
		}
		if name == "" || ignoredJobs[job] {
			continue
		}
		if scripts[job] == nil {
			scripts[job] = map[string]bool{}
		}
		scripts[job][name] = true
	}
	return scripts, nil
}

// parseScriptPath splits <jobs>/<job>/bin/bbr/<script>. A file that is not
// a bbr script gives script "" (upstream ignores such files).
func (c *Conn) parseScriptPath(p string) (job, script string, err error) {
	rest, found := strings.CutPrefix(p, c.JobsDir()+"/")
	job, name, isScript := strings.Cut(rest, "/bin/bbr/")
	if !found || !isScript {
		return "", "", fmt.Errorf("finding scripts: unexpected path %q from the instance", truncate(p, 120))
	}
	if err := boshname.Check("job", job); err != nil {
		return "", "", fmt.Errorf("finding scripts: %w (a directory in %s)", err, c.JobsDir())
	}
	if !knownScripts[name] {
		return job, "", nil
	}
	return job, name, nil
}

// ScriptRun is one run of a job's bbr script.
type ScriptRun struct {
	Job, Script string
	// Env is passed as sudo command-line assignments, as upstream does.
	Env map[string]string
	// Timeout ends the script on the instance (coreutils timeout: TERM,
	// then KILL 10 s later); zero means no limit.
	Timeout time.Duration
	Stdout  io.Writer
}

// RunScript runs a job's script as root.
func (c *Conn) RunScript(ctx context.Context, s ScriptRun) error {
	if err := boshname.Check("job", s.Job); err != nil {
		return err
	}
	if !knownScripts[s.Script] {
		return fmt.Errorf("%q is not a bbr script", s.Script)
	}
	var b strings.Builder
	b.WriteString("sudo")
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if !envName(k) {
			return fmt.Errorf("refusing environment variable name %q", k)
		}
		fmt.Fprintf(&b, " %s=%s", k, remote.Quote(s.Env[k]))
	}
	if s.Timeout > 0 {
		// The local deadline is a backstop for an instance that stops
		// answering.
		// --verbose: timeout says on stderr when it ends the script, which
		// tells its 124 from the script's own.
		fmt.Fprintf(&b, " timeout --verbose -k 10 %d", max(1, int(s.Timeout.Round(time.Second).Seconds())))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout+30*time.Second)
		defer cancel()
	}
	b.WriteString(" " + remote.Quote(path.Join(c.JobsDir(), s.Job, "bin", "bbr", s.Script)))
	return timeoutError(s, c.r.Run(ctx, b.String(), nil, s.Stdout))
}

// timeoutError names a script the timeout ended. timeout exits 124 when it
// ended the script, and the script may exit 124 itself: only a 124 with
// timeout's own "sending signal" line is reported as timed out.
func timeoutError(s ScriptRun, err error) error {
	var exit *remote.ExitError
	switch {
	case s.Timeout <= 0 || err == nil:
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &exit) && exit.Code == 124 && strings.Contains(exit.Stderr, "timeout: sending signal"):
		return fmt.Errorf("%s timed out after %s (the script timeout): %w", s.Script, s.Timeout, err)
	case errors.As(err, &exit) && exit.Code == 128+9:
		// timeout's own SIGKILL, or something else's: say both.
		return fmt.Errorf("%s was killed: it ignored SIGTERM when it timed out after %s (the script timeout), or something else killed it: %w", s.Script, s.Timeout, err)
	}
	return err
}

// envName accepts the shell variable names the contract passes.
func envName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
