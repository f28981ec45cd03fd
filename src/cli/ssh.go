package cli

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/instance"
	"github.com/bbr-release/bbr/src/orchestrator"
	"github.com/bbr-release/bbr/src/remote"
)

// defaultParallelism is not tied to sshd's MaxStartups (10): bbr opens one
// connection per instance and multiplexes sessions on it.
const defaultParallelism = 20

// directorFinder finds deployments through dir, reaching their instances
// over SSH as the users dir sets up.
func directorFinder(dir orchestrator.Director) orchestrator.DirectorFinder {
	return orchestrator.DirectorFinder{Director: dir, Dial: sshDialer()}
}

func sshDialer() orchestrator.Dialer {
	return func(ctx context.Context, host orchestrator.SSHHost, user string, key ssh.Signer) (orchestrator.InstanceConn, error) {
		hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(host.HostPublicKey))
		if err != nil {
			return nil, fmt.Errorf("the Director returned an unreadable host key for %s/%s: %w", host.Group, host.IndexOrID, err)
		}
		return dialInstance(ctx, remote.Config{
			Addr:              host.IP,
			User:              user,
			Signer:            key,
			HostKey:           hostKey,
			ConnectTimeout:    30 * time.Second,
			KeepAliveInterval: 30 * time.Second,
		})
	}
}

// dialInstance connects and speaks bbr's instance protocol on the
// connection.
func dialInstance(ctx context.Context, cfg remote.Config) (orchestrator.InstanceConn, error) {
	conn, err := remote.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return instance.New(conn), nil
}
