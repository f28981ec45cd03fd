package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli"
	"golang.org/x/sync/errgroup"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/orchestrator"
)

// allDeploymentsConcurrency is upstream's: at most 10 deployments at once.
const allDeploymentsConcurrency = 10

const backupCleanupAllAdvice = "It is recommended that you run `bbr deployment --all-deployments backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked."

// allDeployments describes how one subcommand runs with --all-deployments,
// in upstream's words.
type allDeployments struct {
	start     string // printed before the run ("Starting backup..."); may be empty
	verb      string // "backup" in "Starting backup of X"; empty: no per-deployment lines
	failed    string // "cannot be backed up"
	succeeded string // "backed up"
	// logDir is where each deployment's log file goes; empty keeps the
	// log in memory, printed only if the deployment fails.
	logDir string
	// advise says whether a failure calls for the cleanup advice.
	advise func(error) bool
	// listed, when set, is told why the run stopped before any
	// deployment (no Director, no deployments), or nil once it has them:
	// a backup reports either.
	listed func(error)
}

// deploymentResult is one deployment's outcome.
type deploymentResult struct {
	name string
	err  error
}

// runAll runs body on every deployment of the Director, as upstream's
// --all-deployments does: a pending line, per-deployment logs, a summary,
// and exit code 1 on any failure (the bitmask is per deployment only).
func (a allDeployments) runAll(s session, c *cli.Context, body func(*orchestrator.Orchestrator, string) error) error {
	ctx, streams := s.ctx, s.streams
	// One Director client (and UAA session) serves every deployment.
	dir, err := newDirector(ctx, c, newLogger(c, streams.Out))
	if err != nil {
		a.tell(err)
		return exitError(streams, err, "")
	}
	base := s.orchestrator(directorFinder(dir), nil, flagSettings(c))
	names, err := dir.Deployments(ctx)
	if err == nil && len(names) == 0 {
		err = fmt.Errorf("Failed to find any deployments") //nolint:staticcheck // upstream bbr's words
	}
	a.tell(err)
	if err != nil {
		return exitError(streams, err, "")
	}
	if a.start != "" {
		fmt.Fprintln(streams.Out, a.start)
	}
	printTimestamped(streams, "Pending: "+strings.Join(names, ", "))
	printTimestamped(streams, "-------------------------")

	results := make([]deploymentResult, len(names))
	var g errgroup.Group
	g.SetLimit(allDeploymentsConcurrency)
	for i, name := range names {
		g.Go(func() error {
			results[i] = deploymentResult{name: name, err: a.runOne(s, c, base, name, body)}
			return nil
		})
	}
	_ = g.Wait() // every deployment's error is in results
	return a.summarise(streams, results)
}

func (a allDeployments) tell(err error) {
	if a.listed != nil {
		a.listed(err)
	}
}

// runOne runs body on one deployment with its own logger: a log file (when
// logDir is set) and a buffer printed if the deployment fails.
func (a allDeployments) runOne(s session, c *cli.Context, base *orchestrator.Orchestrator, name string, body func(*orchestrator.Orchestrator, string) error) error {
	streams := s.streams
	if err := boshname.Check("deployment", name); err != nil {
		return err // the name would become a log file's and an artifact's
	}
	var buf syncBuffer
	var w io.Writer = &buf
	logPath := ""
	if a.logDir != "" {
		logPath = filepath.Join(a.logDir, fmt.Sprintf("%s_%s.log", name, time.Now().UTC().Format(artifact.DirTimeFormat)))
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("creating the log file of deployment %s: %w", name, err)
		}
		defer f.Close()
		w = io.MultiWriter(&buf, f)
	}
	o := *base
	o.Logger = newLogger(c, w)
	if a.verb != "" {
		printTimestamped(streams, fmt.Sprintf("Starting %s of %s, log file: %s", a.verb, name, logPath))
	}
	err := body(&o, name)
	switch {
	case a.verb == "":
	case err != nil:
		printTimestamped(streams, fmt.Sprintf("ERROR: failed to %s %s", a.verb, name))
		fmt.Fprintln(streams.Out, buf.String())
	default:
		printTimestamped(streams, fmt.Sprintf("Finished %s of %s", a.verb, name))
	}
	return err
}

// summarise prints upstream's closing lines and builds the exit error.
func (a allDeployments) summarise(streams Streams, results []deploymentResult) error {
	var ok, failed []string
	var failures []deploymentResult
	advise := false
	for _, r := range results {
		if r.err == nil {
			ok = append(ok, r.name)
			continue
		}
		failed = append(failed, r.name)
		failures = append(failures, r)
		advise = advise || (a.advise != nil && a.advise(r.err))
	}
	printTimestamped(streams, "-------------------------")
	printTimestamped(streams, fmt.Sprintf("Successfully %s: %s", a.succeeded, strings.Join(ok, ", ")))
	if len(failures) == 0 {
		return nil
	}
	printTimestamped(streams, "FAILED: "+strings.Join(failed, ", "))

	var msg, detail strings.Builder
	fmt.Fprintf(&msg, "%d out of %d deployments %s:\n", len(failures), len(results), a.failed)
	for _, f := range failures {
		fmt.Fprintf(&msg, "  %s\n", f.name)
	}
	detail.WriteString(msg.String())
	for _, f := range failures {
		fmt.Fprintf(&msg, "Deployment '%s':\n%s\n", f.name, indent(orchestrator.ErrorReport(f.err)))
		fmt.Fprintf(&detail, "Deployment %s:\n%s\n", f.name, errorDetail(f.err))
	}
	if err := writeErrorFile(detail.String()); err != nil {
		fmt.Fprintf(streams.Err, "could not write the error log: %v\n", err)
	}
	if advise {
		msg.WriteString("\n" + backupCleanupAllAdvice)
	}
	return cli.NewExitError(msg.String(), 1)
}

func indent(block string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(block, "\n"), "\n", "\n  ")
}

// syncBuffer is a bytes.Buffer safe for the orchestrator's concurrent
// log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
