package instance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// writeHostKeys generates the instance's host keys, ed25519 and ECDSA, as
// a stemcell VM has keys of several types (sshd refuses a key file
// readable by others, hence 0600). It returns the ed25519 public key in
// authorized_keys format: the one the Director reports on SSH setup and
// the one `ssh` records in known_hosts. A client that asks for any
// algorithm may get the ECDSA key instead, as from a real VM.
func writeHostKeys(ed25519File, ecdsaFile string) (string, error) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating host key: %w", err)
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating host key: %w", err)
	}
	if _, err := writeHostKey(ecdsaFile, ecPriv); err != nil {
		return "", err
	}
	return writeHostKey(ed25519File, edPriv)
}

// writeHostKey writes priv to file and its public half to file.pub, and
// returns the public half in authorized_keys format.
func writeHostKey(file string, priv crypto.Signer) (string, error) {
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", fmt.Errorf("encoding host key: %w", err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", fmt.Errorf("writing host key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return "", fmt.Errorf("encoding host public key: %w", err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if err := os.WriteFile(file+".pub", []byte(line+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("writing host public key: %w", err)
	}
	return line, nil
}
