package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/orchestrator"
)

// exitErrorAdvised is exitError with the cleanup advice when the failure
// may have left remote state behind, and what this run knows it left.
func exitErrorAdvised(s session, err error, advice string) error {
	if err == nil {
		return nil
	}
	if !orchestrator.CleanupAdvised(err) {
		advice = ""
	} else if left := s.leftovers.Report(); left != "" {
		advice += "\nWhat this run may have left:\n" + left
	}
	return exitError(s.streams, err, advice)
}

// exitError turns a workflow error into upstream's output: the error list,
// a detailed log in ./bbr-<time>.err.log, the advice, and the exit-code
// bitmask.
func exitError(streams Streams, err error, advice string) error {
	if err == nil {
		return nil
	}
	msg := orchestrator.ErrorReport(err)
	if logErr := writeErrorLog(err); logErr != nil {
		fmt.Fprintf(streams.Err, "could not write the error log: %v\n", logErr)
	}
	if advice != "" {
		msg += "\n" + advice
	}
	return cli.NewExitError(msg, orchestrator.ExitCode(err))
}

// writeErrorLog keeps the full error chain, as upstream keeps its stack
// trace, readable by the owner only.
func writeErrorLog(err error) error { return writeErrorFile(errorDetail(err)) }

func errorDetail(err error) string {
	var detail string
	for i, e := range orchestrator.Flatten(err) {
		detail += fmt.Sprintf("error %d:\n%+v\n", i+1, e)
	}
	return detail
}

// writeErrorFile writes ./bbr-<time>.err.log, upstream's name.
func writeErrorFile(detail string) error {
	name := fmt.Sprintf("bbr-%s.err.log", time.Now().UTC().Format(time.RFC3339))
	return os.WriteFile(name, []byte(detail), 0o600)
}
