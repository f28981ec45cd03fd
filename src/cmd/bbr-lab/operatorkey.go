package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/lab/agent"
	"github.com/bbr-release/bbr/src/lab/model"
)

// operatorUser is the SSH user operator-key creates: on a real BOSH
// Director VM this is the user of bosh-deployment's jumpbox key.
const operatorUser = "jumpbox"

func operatorKeyCommand() cli.Command {
	return cli.Command{
		Name:      "operator-key",
		Usage:     "give an operator SSH access to an instance, as a BOSH Director VM's jumpbox user (for `bbr director`)",
		ArgsUsage: "DEPLOYMENT GROUP/INDEX OUT_DIR",
		Description: `Creates the user "jumpbox" with passwordless sudo on the instance and writes
   OUT_DIR/id_ed25519 (the private key, 0600) and OUT_DIR/known_hosts (the
   instance's host key). Then, for a director-like instance:
     bbr director --host IP --username jumpbox --private-key-path OUT_DIR/id_ed25519 \
       --known-hosts OUT_DIR/known_hosts backup
   bbr-lab down removes the user.`,
		Flags: []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error {
			lab, err := loadLab(c, "operator-key", "DEPLOYMENT GROUP/INDEX OUT_DIR")
			if err != nil {
				return err
			}
			inst, err := findInstance(lab, c.Args()[0], c.Args()[1])
			if err != nil {
				return err
			}
			return operatorKey(lab, c.Args()[0], inst, c.Args()[2])
		},
	}
}

func operatorKey(lab model.Lab, deployment string, inst model.Instance, out string) error {
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
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	keyPath := filepath.Join(out, "id_ed25519")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", keyPath, err)
	}
	known := filepath.Join(out, "known_hosts")
	if err := os.WriteFile(known, []byte(inst.IP+" "+inst.HostPublicKey+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", known, err)
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if err := agent.New(lab, nil).SetUpSSH(context.Background(), deployment, inst, operatorUser, authorized); err != nil {
		return err
	}
	fmt.Printf("user %s on %s (%s/%d): key %s, known_hosts %s\n", operatorUser, inst.IP, inst.Group, inst.Index, keyPath, known)
	return nil
}
