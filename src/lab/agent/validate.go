package agent

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
)

// userPattern is what the lab accepts as an SSH user name: a portable Linux
// login name. bosh and bbr send "bosh_" + 15 hex digits. It also keeps the
// name safe as a path element and in a sudoers line.
var userPattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// ValidateUser rejects user names the lab will not create; they come from
// the network.
func ValidateUser(name string) error {
	if !userPattern.MatchString(name) {
		return fmt.Errorf("invalid user name %q: want %s", name, userPattern)
	}
	return nil
}

// ValidateKey parses a public key in authorized_keys format and returns it
// re-encoded as one bare line ("type base64"): options, comments and any
// further lines are dropped, so a caller cannot smuggle authorized_keys
// options or extra keys into the file.
func ValidateKey(key string) (string, error) {
	pub, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return "", fmt.Errorf("invalid public key: %w", err)
	}
	if len(options) > 0 {
		return "", errors.New("invalid public key: authorized_keys options are not accepted")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return "", errors.New("invalid public key: want exactly one key")
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), nil
}

// maxRegexLen bounds the cleanup regex, which also comes from the network.
const maxRegexLen = 256

// compileUserRegex compiles the user_regex of an SSH cleanup request
// (bbr sends "^bosh_xxx"). Go's RE2 runs in linear time, so a hostile
// pattern cannot stall the agent.
func compileUserRegex(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, errors.New("empty user regex")
	}
	if len(expr) > maxRegexLen {
		return nil, fmt.Errorf("user regex longer than %d characters", maxRegexLen)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid user regex %q: %w", expr, err)
	}
	return re, nil
}
