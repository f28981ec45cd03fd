package report

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/bbr-release/bbr/src/remote"
)

// What a report and a post carry of a failure: what failed, where, the
// exit code, and at most the last few lines of a script's output, with
// whatever looks like a secret redacted. Both are read more widely than
// the 0600 error log, which keeps the full text: a release script's
// stderr (up to 64 KiB) can hold anything, and a `set -x` prints every
// assignment.
const (
	// outputLines are the last lines of a script's output kept, each cut
	// to outputChars.
	outputLines = 5
	outputChars = 200
	// lineChars bounds every other line, maxErrorLines the lines of one
	// error.
	lineChars     = 500
	maxErrorLines = 50
	// OutputPrefix starts each kept line of a script's output.
	OutputPrefix = "| "
	redacted     = "[REDACTED]"
)

// errorLines are err's non-empty lines, trimmed (bbr's error lists are
// indented), with each script's output shortened and redacted; none for
// nil.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	text := err.Error()
	for _, exit := range exitErrors(err) {
		text = strings.ReplaceAll(text, exit.Error(), summariseExit(exit))
	}
	var lines []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, cut(Redact(line), lineChars))
		}
	}
	if len(lines) > maxErrorLines {
		more := len(lines) - maxErrorLines
		lines = append(lines[:maxErrorLines], fmt.Sprintf("... and %d more lines (the error log has them all)", more))
	}
	return lines
}

// exitErrors finds every script exit in err's tree.
func exitErrors(err error) []*remote.ExitError {
	var out []*remote.ExitError
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case *remote.ExitError:
			out = append(out, x)
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}

// summariseExit is a script's exit with the last lines of its output,
// redacted, each on a line of its own.
func summariseExit(e *remote.ExitError) string {
	var lines []string
	for _, line := range strings.Split(e.Stderr, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	code := fmt.Sprintf("exit code %d", e.Code)
	if e.Code == remote.NoExitStatus {
		code = "no exit status"
	}
	if len(lines) == 0 {
		return code
	}
	if len(lines) > outputLines {
		lines = lines[len(lines)-outputLines:]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s; the last %d line(s) of its stderr, redacted (the error log has it all):", code, len(lines))
	for _, line := range lines {
		b.WriteString("\n" + OutputPrefix + cut(Redact(line), outputChars))
	}
	return b.String()
}

// cut shortens s to at most n runes, marking the cut.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// secretKey is a name that looks like a secret's: PGPASSWORD, db_passwd,
// AWS_SECRET_ACCESS_KEY, api-token, credentials, auth, private_key...
const secretKey = `[A-Za-z0-9_.-]*(?:pass|pwd|secret|token|key|credential|auth|private)[A-Za-z0-9_.-]*`

// The redactions, in order; each keeps what names the secret ($1) and
// replaces the value.
var redactions = []*regexp.Regexp{
	// scheme://user:password@host (the password may hold a "/")
	regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s]+(@)`),
	// "password": "x" (JSON), anywhere on the line
	regexp.MustCompile(`(?i)("` + secretKey + `"\s*:\s*)("(?:[^"\\]|\\.)*"|[^\s,}]+)`),
	// password: x (YAML, HTTP headers; curl -v puts "> " first)
	regexp.MustCompile(`(?i)^([\s<>*]*(?:-\s+)?['"]?` + secretKey + `['"]?\s*:\s+)(\S.*)$`),
	// PGPASSWORD=x, export TOKEN='x y', --password=x
	regexp.MustCompile(`(?i)(` + secretKey + `\s*=\s*)("[^"]*"|'[^']*'|[^\s"';&|,]+)`),
	// --password x, -auth-token x
	regexp.MustCompile(`(?i)((?:^|\s)--?` + secretKey + `\s+)([^\s-]\S*)`),
	// Authorization: Bearer x, or Basic x, anywhere
	regexp.MustCompile(`(?i)(\b(?:bearer|basic)\s+)([^\s'"]+)`),
	// curl -u user:password, --user user:password
	regexp.MustCompile(`((?:^|\s)(?:-u|--user)[\s=]+['"]?[^\s:'"]+:)([^\s'"]+)`),
	// mysql -phunter2 (the password glued to -p)
	regexp.MustCompile(`(\bmysql(?:dump)?\b.*\s-p)(\S+)`),
	// an age identity, anywhere
	regexp.MustCompile(`(AGE-SECRET-KEY-1)[0-9A-Z]+`),
}

// Redact replaces the values of what looks like a secret in line:
// KEY=value and `export KEY=value` pairs, --key=value and --key value
// flags, `key: value` (YAML) and "key": "value" (JSON) whose key looks
// like a secret's (password, passwd, secret, token, key, credential,
// auth, private...), the password of a URL, a bearer token and an age
// identity. It errs
// on the side of redacting.
func Redact(line string) string {
	for i, re := range redactions {
		repl := "${1}" + redacted
		if i == 0 {
			repl = "${1}" + redacted + "${2}"
		}
		line = re.ReplaceAllString(line, repl)
	}
	return line
}
