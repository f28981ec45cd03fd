package orchestrator

import (
	"context"
	"io"

	"github.com/bbr-release/bbr/src/instance"
)

// The bbr script names, as the workflows use them.
const (
	ScriptPreBackupLock     = instance.PreBackupLock
	ScriptBackup            = instance.Backup
	ScriptPostBackupUnlock  = instance.PostBackupUnlock
	ScriptPreRestoreLock    = instance.PreRestoreLock
	ScriptRestore           = instance.Restore
	ScriptPostRestoreUnlock = instance.PostRestoreUnlock
	ScriptMetadata          = instance.Metadata
)

// runScript runs a job's script as root, within the script timeout.
func runScript(ctx context.Context, j *Job, script string, env map[string]string, stdout io.Writer) error {
	return j.Instance.conn.RunScript(ctx, instance.ScriptRun{
		Job: j.Name, Script: script, Env: env, Timeout: j.Instance.scriptTimeout, Stdout: stdout,
	})
}

// artifactEnv is the environment of backup and restore scripts. Both names
// carry a trailing slash, as upstream passes them.
func artifactEnv(j *Job) map[string]string {
	dir := j.StagingDir() + "/"
	return map[string]string{"BBR_ARTIFACT_DIRECTORY": dir, "ARTIFACT_DIRECTORY": dir}
}
