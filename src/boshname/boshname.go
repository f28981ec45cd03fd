// Package boshname checks the names bbr receives from a Director, a
// manifest or an instance (deployments, instance groups, jobs, releases,
// instance IDs) against BOSH's own rules before they reach a shell command
// or a path. A name that fails is refused, never cleaned up: a job
// directory called "evil;$(...)" is an attack, not a typo.
package boshname

import (
	"fmt"
	"regexp"
)

// MaxLen bounds a name; BOSH's are short identifiers.
const MaxLen = 255

// pattern is what the Director accepts for deployment, instance group, job
// and release names (its VALID_ID, /^[-0-9A-Za-z_+.]+$/), narrowed only so
// that no name is "." or "..", starts with "-" (an option to a command) or
// ".": none holds a path separator, a quote, a space or a control
// character.
var pattern = regexp.MustCompile(`^[A-Za-z0-9_+][A-Za-z0-9_+.-]*$`)

// idPattern is an instance ID (a UUID) or index as the Director reports it.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)

// Valid says whether s is a valid BOSH name.
func Valid(s string) bool { return len(s) <= MaxLen && pattern.MatchString(s) }

// Check returns an error naming the value and what is allowed when s is not
// a valid BOSH name; kind says what it is ("job", "release", ...).
func Check(kind, s string) error {
	if Valid(s) {
		return nil
	}
	return fmt.Errorf("refusing %s name %q: a BOSH %s name is at most %d letters, digits, '_', '+', '.' and '-', not starting with '.' or '-'", kind, s, kind, MaxLen)
}

// CheckID is Check for an instance ID.
func CheckID(s string) error {
	if len(s) <= MaxLen && idPattern.MatchString(s) {
		return nil
	}
	return fmt.Errorf("refusing instance ID %q: a BOSH instance ID is letters, digits and '-'", s)
}
