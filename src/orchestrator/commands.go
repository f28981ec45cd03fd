package orchestrator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/bbr-release/bbr/src/artifact"
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
	b.WriteString(" " + remote.Quote(scriptPath(j.Name, script)))
	return j.Instance.runner.Run(ctx, b.String(), nil, stdout)
}

// artifactEnv is the environment of backup and restore scripts. Both names
// carry a trailing slash, as upstream passes them.
func artifactEnv(j *Job) map[string]string {
	dir := j.StagingDir() + "/"
	return map[string]string{"BBR_ARTIFACT_DIRECTORY": dir, "ARTIFACT_DIRECTORY": dir}
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
		job, script, ok := parseScriptPath(p)
		if !ok || ignoredJobs[job] {
			continue
		}
		if scripts[job] == nil {
			scripts[job] = map[string]bool{}
		}
		scripts[job][script] = true
	}
	return scripts, nil
}

// parseScriptPath splits /var/vcap/jobs/<job>/bin/bbr/<script>.
func parseScriptPath(p string) (job, script string, ok bool) {
	rest, found := strings.CutPrefix(p, JobsDir+"/")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[1] != "bin" || parts[2] != "bbr" || !knownScripts[parts[3]] || parts[0] == "" {
		return "", "", false
	}
	return parts[0], parts[3], true
}

// stagingExists says whether the remote staging root exists.
func stagingExists(ctx context.Context, r Runner) (bool, error) {
	var out bytes.Buffer
	cmd := fmt.Sprintf("sudo sh -c 'if [ -e %s ]; then echo exists; fi'", StagingRoot)
	if err := r.Run(ctx, cmd, nil, &out); err != nil {
		return false, err
	}
	return strings.TrimSpace(out.String()) == "exists", nil
}

// remoteChecksums hashes every regular file under dir on the instance,
// NUL-separated so any file name survives (upstream's xargs breaks on spaces).
func remoteChecksums(ctx context.Context, r Runner, dir string) (artifact.Checksums, error) {
	var out bytes.Buffer
	cmd := fmt.Sprintf("sudo sh -c %s", remote.Quote(fmt.Sprintf(
		"cd %s && find . -type f -print0 | xargs -0 -r sha256sum -z", remote.Quote(dir))))
	if err := r.Run(ctx, cmd, nil, &out); err != nil {
		return nil, fmt.Errorf("checksumming %s: %w", dir, err)
	}
	return ParseChecksums(out.Bytes())
}

// ParseChecksums parses `sha256sum -z` output: "<hex>  <name>\0" records.
func ParseChecksums(out []byte) (artifact.Checksums, error) {
	sums := artifact.Checksums{}
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		sum, name, ok := bytes.Cut(rec, []byte("  "))
		if !ok || len(sum) != 64 || len(name) == 0 {
			return nil, fmt.Errorf("unexpected checksum output %q", truncate(string(rec), 120))
		}
		for _, c := range sum {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return nil, fmt.Errorf("unexpected checksum output %q", truncate(string(rec), 120))
			}
		}
		sums[string(name)] = string(sum)
	}
	return sums, nil
}

// streamOut writes a tar of dir to w.
func streamOut(ctx context.Context, r Runner, dir string, w io.Writer) error {
	return r.Run(ctx, "sudo tar -C "+remote.Quote(dir)+" -c .", nil, w)
}

// streamIn extracts the tar read from rd into dir, creating dir.
func streamIn(ctx context.Context, r Runner, dir string, rd io.Reader) error {
	q := remote.Quote(dir)
	return r.Run(ctx, fmt.Sprintf("sudo sh -c %s", remote.Quote("mkdir -p "+q+" && tar -C "+q+" -x")), rd, nil)
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
