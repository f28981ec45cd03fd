package transform

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// Recipient is a public key backups are encrypted to, with the name the
// metadata records for it: the age recipient itself, or an SSH key's
// type and SHA256 fingerprint (as ssh-keygen -l prints it).
type Recipient struct {
	age.Recipient
	Name string
}

// maxKeyFile bounds a recipients or identity file.
const maxKeyFile = 1 << 20

// ParseRecipients reads public keys, one per entry or line, as `age -r`
// and `age -R` take them: age1... (X25519, or age1pq1... hybrid) and SSH
// ssh-ed25519 / ssh-rsa keys. Blank lines and # comments are skipped.
func ParseRecipients(entries []string) ([]Recipient, error) {
	var out []Recipient
	for _, entry := range entries {
		for line := range strings.SplitSeq(entry, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			r, err := parseRecipient(line)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no recipients given: give age (age1...) or SSH public keys")
	}
	return out, nil
}

func parseRecipient(line string) (Recipient, error) {
	if strings.HasPrefix(line, "ssh-") {
		r, err := agessh.ParseRecipient(line)
		if err != nil {
			return Recipient{}, fmt.Errorf("a recipient starting %q is not an SSH public key age can encrypt to (ssh-ed25519 or ssh-rsa): %w", keyType(line), err)
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return Recipient{}, fmt.Errorf("a recipient starting %q: %w", keyType(line), err)
		}
		return Recipient{r, pub.Type() + " " + ssh.FingerprintSHA256(pub)}, nil
	}
	if upper := strings.ToUpper(line); strings.Contains(upper, "AGE-SECRET-KEY-") || strings.Contains(upper, "PRIVATE KEY") {
		// Never echo it: it is a secret in the wrong place.
		return Recipient{}, errors.New("a recipient is a private key: give the public key (age-keygen -y prints it); the backup machine must never hold the private key")
	}
	rs, err := age.ParseRecipients(strings.NewReader(line))
	if err != nil || len(rs) != 1 {
		// Not quoted: a mistyped line may be a secret.
		return Recipient{}, fmt.Errorf("a recipient of %d characters is not an age public key (age1...) or an SSH public key", len(line))
	}
	return Recipient{rs[0], line}, nil
}

// ReadRecipientsFile reads a recipients file, as `age -R` does.
func ReadRecipientsFile(path string) ([]Recipient, error) {
	raw, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	rs, err := ParseRecipients([]string{string(raw)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

// ParseIdentity reads one identity file's content, as `age -i` takes it:
// age secret keys (one per line) or an unencrypted SSH private key. Its
// errors never quote the content.
func ParseIdentity(raw []byte) ([]age.Identity, error) {
	if bytes.Contains(raw, []byte("-----BEGIN")) {
		id, err := agessh.ParseIdentity(raw)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, errors.New("the SSH private key is passphrase-protected, which bbr cannot prompt for: use an age identity (age-keygen), or an unprotected key kept as safe as one")
		}
		if err != nil {
			return nil, fmt.Errorf("not an SSH private key age can use: %w", err)
		}
		return []age.Identity{id}, nil
	}
	ids, err := age.ParseIdentities(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not an age identity file (AGE-SECRET-KEY-1..., as age-keygen writes) or SSH private key: %w", err)
	}
	return ids, nil
}

// ReadIdentityFiles reads every identity file given.
func ReadIdentityFiles(paths []string) ([]age.Identity, error) {
	var ids []age.Identity
	for _, path := range paths {
		raw, err := readKeyFile(path)
		if err != nil {
			return nil, err
		}
		got, err := ParseIdentity(raw)
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w", path, err)
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	if len(raw) > maxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than %d bytes", path, maxKeyFile)
	}
	return raw, nil
}

// keyType is an SSH key line's first field, what an error may quote.
func keyType(line string) string {
	t, _, _ := strings.Cut(line, " ")
	if len(t) > 40 {
		t = t[:40]
	}
	return t
}
