package orchestrator

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an error for the exit code, upstream's bitmask contract:
// 1 any other failure, 4 a lock failed, 8 an unlock failed, 16 cleanup failed.
type Kind int

// The exit-code bits.
const (
	KindGeneric Kind = 1
	KindLock    Kind = 1 << 2
	KindUnlock  Kind = 1 << 3
	KindCleanup Kind = 1 << 4
)

// StepError is a failure of one workflow step, classified for the exit code.
type StepError struct {
	Kind Kind
	// CleanupAdvised is set when remote state may be left behind, so the
	// operator should run the cleanup command (as upstream advises).
	CleanupAdvised bool
	Err            error
}

func (e *StepError) Error() string { return e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

func lockError(err error) error   { return classify(KindLock, false, err) }
func unlockError(err error) error { return classify(KindUnlock, true, err) }
func cleanupError(err error) error {
	return classify(KindCleanup, true, err)
}
func adviseCleanup(err error) error { return classify(KindGeneric, true, err) }

func classify(kind Kind, advise bool, err error) error {
	if err == nil {
		return nil
	}
	return &StepError{Kind: kind, CleanupAdvised: advise, Err: err}
}

// Flatten lists the individual failures in err: joined errors are split,
// a StepError is one failure whatever it wraps.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	var step *StepError
	if se, ok := err.(*StepError); ok {
		step = se
	}
	if step == nil {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			var out []error
			for _, e := range joined.Unwrap() {
				out = append(out, Flatten(e)...)
			}
			return out
		}
	}
	return []error{err}
}

// ExitCode ORs the bits of every failure in err; 0 for nil.
func ExitCode(err error) int {
	code := 0
	for _, e := range Flatten(err) {
		var step *StepError
		if errors.As(e, &step) {
			code |= int(step.Kind)
		} else {
			code |= int(KindGeneric)
		}
	}
	return code
}

// CleanupAdvised says whether the operator should run a cleanup command.
func CleanupAdvised(err error) bool {
	for _, e := range Flatten(err) {
		var step *StepError
		if errors.As(e, &step) && step.CleanupAdvised {
			return true
		}
	}
	return false
}

// ErrorReport renders err as upstream does: "N errors occurred:\nerror 1:\n...".
func ErrorReport(err error) string {
	errs := Flatten(err)
	if len(errs) == 0 {
		return ""
	}
	var b strings.Builder
	plural := ""
	if len(errs) > 1 {
		plural = "s"
	}
	fmt.Fprintf(&b, "%d error%s occurred:\n", len(errs), plural)
	for i, e := range errs {
		fmt.Fprintf(&b, "error %d:\n%s\n", i+1, e.Error())
	}
	return b.String()
}
