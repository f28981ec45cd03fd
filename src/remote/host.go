package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/crypto/ssh"
)

// HostName is upstream's artifact name for a standalone VM's --host (the
// Director's): the host name without scheme or port (upstream mangles
// IPv6 literals; we keep them).
func HostName(host string) string {
	if u, err := url.Parse(host); err == nil && u.Scheme != "" && u.Hostname() != "" {
		return u.Hostname()
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}

// HostAddress is host:port for a --host that may carry a scheme and a
// port (22 when absent). Unlike upstream, IPv6 literals work.
func HostAddress(host string) string {
	if u, err := url.Parse(host); err == nil && u.Hostname() != "" && u.Scheme != "" {
		if u.Port() != "" {
			return net.JoinHostPort(u.Hostname(), u.Port())
		}
		return net.JoinHostPort(u.Hostname(), "22")
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), "22")
}

// ParseHostKeys reads pinned host keys: one per line, as a public key
// ("ssh-ed25519 AAAA...", what ssh-keyscan prints without its host) or a
// known_hosts line (its hosts are ignored: the keys are pinned to the one
// host they are given for). Blank lines and # comments are skipped.
func ParseHostKeys(text string) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := parseHostKeyLine(line)
		if err != nil {
			// The line is not quoted: a key pasted into the wrong property
			// may be a private one.
			return nil, fmt.Errorf("line %d is neither a public key (ssh-ed25519 AAAA...) nor a known_hosts line", n+1)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no host key in it")
	}
	return keys, nil
}

func parseHostKeyLine(line string) (ssh.PublicKey, error) {
	if key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
		return key, nil
	}
	marker, _, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
	if err == nil && marker != "" {
		// @revoked and @cert-authority lines are no key to pin.
		return nil, fmt.Errorf("a %s line", marker)
	}
	return key, err
}

// PinnedHostKeys accepts exactly the given keys; source says where they
// come from, for the error when the host presents another one.
func PinnedHostKeys(source string, keys ...ssh.PublicKey) ssh.HostKeyCallback {
	return func(hostname string, _ net.Addr, got ssh.PublicKey) error {
		var want []string
		for _, k := range keys {
			if bytes.Equal(got.Marshal(), k.Marshal()) {
				return nil
			}
			want = append(want, k.Type()+" "+ssh.FingerprintSHA256(k))
		}
		return fmt.Errorf("host key mismatch for %s: the instance presented %s %s but %s %s; refusing to connect",
			hostname, got.Type(), ssh.FingerprintSHA256(got), source, strings.Join(want, ", "))
	}
}
