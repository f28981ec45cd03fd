package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/remote"
)

// The script contract: where scripts live, where artifacts are staged.
const (
	JobsDir     = "/var/vcap/jobs"
	StagingRoot = "/var/vcap/store/bbr-backup"
)

// The bbr script names.
const (
	ScriptPreBackupLock     = "pre-backup-lock"
	ScriptBackup            = "backup"
	ScriptPostBackupUnlock  = "post-backup-unlock"
	ScriptPreRestoreLock    = "pre-restore-lock"
	ScriptRestore           = "restore"
	ScriptPostRestoreUnlock = "post-restore-unlock"
	ScriptMetadata          = "metadata"
)

var knownScripts = map[string]bool{
	ScriptPreBackupLock: true, ScriptBackup: true, ScriptPostBackupUnlock: true,
	ScriptPreRestoreLock: true, ScriptRestore: true, ScriptPostRestoreUnlock: true,
	ScriptMetadata: true,
}

// ignoredJobs are legacy cf-mysql jobs whose scripts bbr must not run.
var ignoredJobs = map[string]bool{"mysql-backup": true, "mysql-restore": true}

func scriptPath(job, script string) string { return path.Join(JobsDir, job, "bin", "bbr", script) }

// runScript runs a job's script as root through sudo, with env as sudo
// command-line assignments, the way upstream does.
func runScript(ctx context.Context, j *Job, script string, env map[string]string, stdout io.Writer) error {
	var b strings.Builder
	b.WriteString("sudo")
	for _, k := range sortedKeys(env) {
		fmt.Fprintf(&b, " %s=%s", k, remote.Quote(env[k]))
	}
	limit := j.Instance.scriptTimeout
	if limit > 0 {
		// coreutils timeout, run as root, ends the script on the instance
		// itself (TERM, then KILL 10 s later); the local deadline is a
		// backstop for an instance that stops answering.
		fmt.Fprintf(&b, " timeout -k 10 %d", max(1, int(limit.Round(time.Second).Seconds())))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit+30*time.Second)
		defer cancel()
	}
	b.WriteString(" " + remote.Quote(scriptPath(j.Name, script)))
	err := j.Instance.runner.Run(ctx, b.String(), nil, stdout)
	var exit *remote.ExitError
	switch {
	case limit <= 0 || err == nil:
	case errors.As(err, &exit) && exit.Code == 124, errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s timed out after %s (the script timeout): %w", script, limit, err)
	case errors.As(err, &exit) && exit.Code == 128+9:
		// timeout's own SIGKILL, or something else's: say both.
		return fmt.Errorf("%s was killed: it ignored SIGTERM when it timed out after %s (the script timeout), or something else killed it: %w", script, limit, err)
	}
	return err
}

// artifactEnv is the environment of backup and restore scripts. Both names
// carry a trailing slash, as upstream passes them.
func artifactEnv(j *Job) map[string]string {
	dir := j.StagingDir() + "/"
	return map[string]string{"BBR_ARTIFACT_DIRECTORY": dir, "ARTIFACT_DIRECTORY": dir}
}

// isWindows asks the instance's shell, as upstream does: cmd.exe expands
// %OS% to Windows_NT, a POSIX shell prints it unchanged.
func isWindows(ctx context.Context, r Runner) (bool, error) {
	var out bytes.Buffer
	if err := r.Run(ctx, "echo %OS%", nil, &out); err != nil {
		return false, fmt.Errorf("checking the instance's operating system: %w", err)
	}
	return strings.TrimSpace(out.String()) == "Windows_NT", nil
}

// findScripts lists the bbr scripts on an instance, by job.
func findScripts(ctx context.Context, r Runner) (map[string]map[string]bool, error) {
	var out bytes.Buffer
	// -print0 and an explicit test keep odd names and "no jobs" harmless.
	cmd := `sudo sh -c 'for d in /var/vcap/jobs/*/bin/bbr; do [ -d "$d" ] && find "$d" -maxdepth 1 -type f -print0; done; true'`
	if err := r.Run(ctx, cmd, nil, &out); err != nil {
		return nil, fmt.Errorf("finding scripts: %w", err)
	}
	scripts := map[string]map[string]bool{}
	for _, p := range strings.Split(out.String(), "\x00") {
		if p == "" {
			continue
		}
		job, script, err := parseScriptPath(p)
		if err != nil {
			return nil, err
		}
		if script == "" || ignoredJobs[job] {
			continue
		}
		if scripts[job] == nil {
			scripts[job] = map[string]bool{}
		}
		scripts[job][script] = true
	}
	return scripts, nil
}

// parseScriptPath splits /var/vcap/jobs/<job>/bin/bbr/<script>. A file that
// is not a bbr script gives script "" (upstream ignores such files); a job
// name BOSH would not accept is refused: it reaches root shell commands
// and paths (its staging directory), so "..", spaces or a command in it
// must never get that far.
func parseScriptPath(p string) (job, script string, err error) {
	rest, found := strings.CutPrefix(p, JobsDir+"/")
	job, name, isScript := strings.Cut(rest, "/bin/bbr/")
	if !found || !isScript {
		return "", "", fmt.Errorf("finding scripts: unexpected path %q from the instance", truncate(p, 120))
	}
	if err := boshname.Check("job", job); err != nil {
		return "", "", fmt.Errorf("finding scripts: %w (a directory under %s)", err, JobsDir)
	}
	if !knownScripts[name] {
		return job, "", nil
	}
	return job, name, nil
}

// ownerFile, in the staging root, names the run that created it.
const ownerFile = StagingRoot + "/.bbr-owner"

// stagingHolder is the run that holds an instance's staging directory, as
// its owner file says (text is empty when there is none: an older bbr, or
// upstream, made the directory).
type stagingHolder struct{ text string }

// takeStaging checks the staging root and, with claim, creates it
// atomically with an owner file. It reports whether this call created it,
// or else who holds it (nil when it does not exist).
func takeStaging(ctx context.Context, r Runner, claim bool, owner string) (bool, *stagingHolder, error) {
	script := "if [ -e " + StagingRoot + " ]; then echo exists; cat " + ownerFile + " 2>/dev/null || true; fi"
	if claim {
		script = "mkdir -p " + path.Dir(StagingRoot) + "; if mkdir " + StagingRoot + " 2>/dev/null; then " +
			`printf "%s" "$1" > ` + ownerFile + "; echo claimed; else echo exists; cat " + ownerFile + " 2>/dev/null || true; fi"
	}
	var out bytes.Buffer
	if err := r.Run(ctx, "sudo sh -c "+remote.Quote(script)+" sh "+remote.Quote(owner), nil, &out); err != nil {
		return false, nil, err
	}
	state, rest, _ := strings.Cut(out.String(), "\n")
	switch strings.TrimSpace(state) {
	case "claimed":
		return true, nil, nil
	case "exists":
		return false, &stagingHolder{text: strings.TrimSpace(rest)}, nil
	}
	return false, nil, nil
}

// holderUser finds the run's SSH user in its owner text.
var holderUser = regexp.MustCompile(`SSH user (bosh_[0-9a-f]+),`)

// active says whether the holding run is still going: its SSH user exists
// only while it runs (every run removes its user when it ends).
func (h *stagingHolder) active(ctx context.Context, r Runner) bool {
	m := holderUser.FindStringSubmatch(h.text)
	if m == nil {
		return false
	}
	return r.Run(ctx, "id -u "+remote.Quote(m[1]), nil, nil) == nil
}

// checksumScript hashes every regular file under the current directory.
// openssl uses the CPU's SHA instructions (about 4x coreutils sha256sum
// here), but its line format cannot carry a file name with a newline or a
// backslash unambiguously: such trees, and instances without openssl, use
// NUL-separated `sha256sum -z`. (Upstream's `xargs shasum` broke on spaces.)
const checksumScript = `nl=$(printf '\n_'); nl=${nl%_}
if command -v openssl >/dev/null 2>&1 && [ -z "$(find . -type f \( -name "*$nl*" -o -name '*\\*' \) -print -quit)" ]; then
  echo '` + opensslMarker + `'
  find . -type f -print0 | xargs -0 -r openssl dgst -sha256 -r
else
  find . -type f -print0 | xargs -0 -r sha256sum -z
fi`

// opensslMarker starts output in openssl's "<hex> *<name>" line format.
const opensslMarker = "#openssl"

// remoteChecksums hashes every regular file under dir on the instance.
func remoteChecksums(ctx context.Context, r Runner, dir string) (artifact.Checksums, error) {
	var out bytes.Buffer
	script := "cd " + remote.Quote(dir) + " || exit 1\n" + checksumScript
	if err := r.Run(ctx, "sudo sh -c "+remote.Quote(script), nil, &out); err != nil {
		return nil, fmt.Errorf("checksumming %s: %w", dir, err)
	}
	return ParseChecksums(out.Bytes())
}

// ParseChecksums parses the checksum script's output: openssl lines after
// the marker, or `sha256sum -z` records ("<hex>  <name>\0").
// Every name must be one `find .` prints ("./" and a clean relative path),
// every sum a lowercase sha256, and no name may repeat.
func ParseChecksums(out []byte) (artifact.Checksums, error) {
	if rest, ok := bytes.CutPrefix(out, []byte(opensslMarker+"\n")); ok {
		return parseRecords(bytes.Split(rest, []byte{'\n'}), " *")
	}
	return parseRecords(bytes.Split(out, []byte{0}), "  ")
}

func parseRecords(records [][]byte, sep string) (artifact.Checksums, error) {
	sums := artifact.Checksums{}
	for _, rec := range records {
		if len(rec) == 0 {
			continue
		}
		sum, name, ok := bytes.Cut(rec, []byte(sep))
		if !ok || !artifact.ValidFileName(string(name)) || !artifact.IsSHA256Hex(string(sum)) {
			return nil, fmt.Errorf("unexpected checksum output %q", truncate(string(rec), 120))
		}
		if _, dup := sums[string(name)]; dup {
			return nil, fmt.Errorf("checksum output names %q twice", truncate(string(name), 120))
		}
		sums[string(name)] = string(sum)
	}
	return sums, nil
}

// streamOut writes a tar of dir to w.
func streamOut(ctx context.Context, r Runner, dir string, w io.Writer) error {
	return r.Run(ctx, "sudo tar -C "+remote.Quote(dir)+" -c .", nil, w)
}

// streamIn extracts the tar read from rd into dir, creating dir. tar is
// exec'd so that a cancelled run's SIGTERM, which sudo passes to the shell,
// reaches it.
func streamIn(ctx context.Context, r Runner, dir string, rd io.Reader) error {
	q := remote.Quote(dir)
	return r.Run(ctx, fmt.Sprintf("sudo sh -c %s", remote.Quote("mkdir -p "+q+" && exec tar -C "+q+" -x")), rd, nil)
}

func removeRemote(ctx context.Context, r Runner, dir string) error {
	return r.Run(ctx, "sudo rm -rf "+remote.Quote(dir), nil, nil)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
