package labctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/bbr-release/bbr/src/lab/agent"
	"github.com/bbr-release/bbr/src/lab/deploy"
	"github.com/bbr-release/bbr/src/lab/director"
	"github.com/bbr-release/bbr/src/lab/labdir"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/pki"
	"github.com/bbr-release/bbr/src/lab/releasestore"
)

// ServeDirector is the Director daemon `up` starts (the hidden
// director-serve): the Director API for the lab in dir, wired to the
// lab's agent, release store and deployer, until SIGTERM or SIGINT. Its
// log is stderr, which up sends to director.log.
func ServeDirector(dir string) error {
	lab, err := model.Load(dir)
	if err != nil {
		return err
	}
	ca, err := pki.LoadOrCreate(dir)
	if err != nil {
		return fmt.Errorf("loading the lab CA: %w", err)
	}
	tlsConfig, err := ca.ServerTLSConfig(certHosts(lab.Director))
	if err != nil {
		return fmt.Errorf("making the Director's certificate: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	self, err := selfPath()
	if err != nil {
		return err
	}
	a := agent.New(lab, os.Stderr)
	deploys := &deploy.Deployer{Lab: lab, Self: self, Vars: deploy.Vars(lab.Director.Address, ca.CertPEM(), lab.Director.ClientSecret), Log: os.Stderr}
	srv := director.New(director.Config{
		Lab:      lab,
		Agent:    a,
		Errands:  a,
		Releases: &releasestore.Store{Dir: filepath.Join(dir, labdir.DirectorState), CompileCache: lab.CompileCache},
		Deployer: deploys,
		Save:     model.Save,
		Log:      os.Stderr,
		TLS:      tlsConfig,
	})
	// The server's deployments are the current ones (deploys add to them):
	// the deployer places a new one after them, the agent looks through
	// them for a user's keys.
	deploys.Deployed, a.Deployments = srv.Deployments, srv.Deployments
	fmt.Fprintf(os.Stderr, "director-serve: serving https://%s for %s\n", lab.Director.Address, dir)
	if err := srv.ListenAndServe(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serving the Director API: %w", err)
	}
	return nil
}

// certHosts are the names the Director certificate must be valid for.
func certHosts(d model.Director) []string {
	seen := map[string]bool{}
	var hosts []string
	for _, addr := range []string{d.Address, d.UAAAddress} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host == "" || seen[host] {
			continue
		}
		seen[host] = true
		hosts = append(hosts, host)
	}
	return hosts
}
