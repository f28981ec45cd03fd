package labctl

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/lab/agent"
	"github.com/bbr-release/bbr/src/lab/model"
)

// operatorUser is the SSH user operator-key creates: on a real BOSH
// Director VM this is the user of bosh-deployment's jumpbox key.
const operatorUser = "jumpbox"

// OperatorKey gives an operator SSH access to the instance args[1] of
// deployment args[0], as a Director VM's jumpbox user: a new key and the
// host key in the directory args[2], the user with sudo on the instance.
func OperatorKey(dir string, args []string, out io.Writer) error {
	lab, err := load(dir, "operator-key", "DEPLOYMENT GROUP/INDEX OUT_DIR", args)
	if err != nil {
		return err
	}
	inst, err := FindInstance(lab, args[0], args[1])
	if err != nil {
		return err
	}
	return operatorKey(lab, args[0], inst, args[2], out)
}

func operatorKey(lab model.Lab, deployment string, inst model.Instance, dir string, out io.Writer) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, operatorUser)
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	keyPath, known, err := writeOperatorFiles(dir, pem.EncodeToMemory(block), inst)
	if err != nil {
		return err
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if err := agent.New(lab, nil).SetUpSSH(context.Background(), deployment, inst, operatorUser, authorized); err != nil {
		return err
	}
	fmt.Fprintf(out, "user %s on %s (%s/%d): key %s, known_hosts %s\n", operatorUser, inst.IP, inst.Group, inst.Index, keyPath, known)
	return nil
}

// writeOperatorFiles writes dir/id_ed25519 and dir/known_hosts (the
// instance's host key), both 0600, and returns their paths.
func writeOperatorFiles(dir string, keyPEM []byte, inst model.Instance) (string, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	keyPath := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", keyPath, err)
	}
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(inst.IP+" "+inst.HostPublicKey+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", known, err)
	}
	return keyPath, known, nil
}
