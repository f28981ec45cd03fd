package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// pass is one run of a lock or unlock script over the lock layers.
type pass struct {
	script string
	// unlock passes run in reverse order and attempt every job whatever
	// fails (unlock scripts must be idempotent, as the contract says),
	// each script with its own CleanupTimeout; lock passes stop at the
	// first failure, so nothing more gets locked that needs unlocking.
	unlock bool
	// serial runs one job at a time, as upstream restores; otherwise the
	// jobs of a layer run in parallel.
	serial bool
	env    map[string]string
	// suffix ends the lock log lines (" for backup"); errorLine logs
	// upstream's "Error locking ..." line, which restores do not.
	suffix    string
	errorLine bool
	// classify gives the failure its exit-code bit.
	classify func(error) error
}

func (o *Orchestrator) lockBackup(ctx context.Context, layers [][]*Job) error {
	return o.runPass(ctx, layers, pass{script: ScriptPreBackupLock, suffix: " for backup", errorLine: true, classify: lockError})
}

// unlockBackup runs every post-backup-unlock, also for jobs whose lock
// failed or never ran.
func (o *Orchestrator) unlockBackup(ctx context.Context, layers [][]*Job, succeeded bool) error {
	env := map[string]string{"BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL": strconv.FormatBool(succeeded)}
	return o.runPass(ctx, layers, pass{script: ScriptPostBackupUnlock, unlock: true, env: env, errorLine: true, classify: unlockError})
}

// lockRestore runs pre-restore-lock serially in lock order and stops at
// the first failure (upstream reports it as a generic error, exit bit 1).
func (o *Orchestrator) lockRestore(ctx context.Context, layers [][]*Job) error {
	return o.runPass(ctx, layers, pass{script: ScriptPreRestoreLock, serial: true, suffix: " for restore", classify: func(err error) error { return err }})
}

// unlockRestore runs every post-restore-unlock serially in reverse order.
func (o *Orchestrator) unlockRestore(ctx context.Context, layers [][]*Job) error {
	return o.runPass(ctx, layers, pass{script: ScriptPostRestoreUnlock, unlock: true, serial: true, classify: unlockError})
}

func (o *Orchestrator) runPass(ctx context.Context, layers [][]*Job, p pass) error {
	o.Logger.Info("bbr", "Running %s scripts...", p.script)
	if p.unlock {
		layers = reverseLayers(layers)
	}
	var errs []error
	for _, layer := range layers {
		err := o.runLayer(ctx, withScript(layer, p.script), p)
		if err != nil && !p.unlock {
			return err
		}
		errs = append(errs, err)
	}
	o.Logger.Info("bbr", "Finished running %s scripts.", p.script)
	return errors.Join(errs...)
}

func (o *Orchestrator) runLayer(ctx context.Context, jobs []*Job, p pass) error {
	if !p.serial {
		return forEach(jobs, o.Parallelism, func(j *Job) error { return o.runPassScript(ctx, j, p) })
	}
	var errs []error
	for _, j := range jobs {
		err := o.runPassScript(ctx, j, p)
		if err != nil && !p.unlock {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o *Orchestrator) runPassScript(ctx context.Context, j *Job, p pass) error {
	verb, doing := "Locking", "locking"
	if p.unlock {
		verb, doing = "Unlocking", "unlocking"
	}
	where := j.Instance.Name()
	o.Logger.Info("bbr", "%s %s on %s%s...", verb, j.Name, where, p.suffix)
	var err error
	if p.unlock {
		err = o.runUnlockScript(ctx, j, p.script, p.env)
	} else {
		j.locked.Store(true) // from here an unlock is owed
		err = runScript(ctx, j, p.script, p.env, nil)
	}
	if err != nil {
		if p.errorLine {
			o.Logger.Info("bbr", "Error %s %s on %s.", doing, j.Name, where)
		}
		return p.classify(fmt.Errorf("Error attempting to run %s for job %s on %s: %w", p.script, j.Name, where, err))
	}
	if p.unlock {
		j.locked.Store(false)
	}
	o.Logger.Info("bbr", "Finished %s %s on %s%s.", doing, j.Name, where, p.suffix)
	return nil
}

// runUnlockScript runs an unlock script with CleanupTimeout of its own, so
// slow earlier unlocks cannot use up its time.
func (o *Orchestrator) runUnlockScript(ctx context.Context, j *Job, script string, env map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, o.CleanupTimeout)
	defer cancel()
	return runScript(ctx, j, script, env, nil)
}

func withScript(jobs []*Job, script string) []*Job {
	var out []*Job
	for _, j := range jobs {
		if j.Has(script) {
			out = append(out, j)
		}
	}
	return out
}
