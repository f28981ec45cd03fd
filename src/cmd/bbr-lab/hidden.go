package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/agent"
	"github.com/bbr-release/bbr/src/lab/director"
	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/pki"
	"github.com/bbr-release/bbr/src/lab/releasestore"
	"github.com/bbr-release/bbr/src/lab/sample"
)

// The commands below are started by bbr-lab itself, never by an operator.

func directorServeCommand() cli.Command {
	return cli.Command{
		Name:   "director-serve",
		Hidden: true,
		Usage:  "serve the lab's Director API (started by bbr-lab up)",
		Flags:  []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error { return directorServe(c.String("dir")) },
	}
}

func directorServe(dir string) error {
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
	deploys := &deployer{lab: lab, self: self, vars: labVars(lab.Director.Address, ca.CertPEM(), lab.Director.ClientSecret), log: os.Stderr}
	srv := director.New(director.Config{
		Lab:      lab,
		Agent:    a,
		Errands:  a,
		Releases: &releasestore.Store{Dir: filepath.Join(dir, directorStateDir), CompileCache: lab.CompileCache},
		Deployer: deploys,
		Save:     model.Save,
		Log:      os.Stderr,
		TLS:      tlsConfig,
	})
	deploys.deployed, a.Deployments = srv.Deployments, srv.Deployments
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

// tlsClientConfig trusts only the lab CA, for readiness and status checks.
func tlsClientConfig(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the lab CA certificate does not parse")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func instanceInitCommand() cli.Command {
	return cli.Command{
		Name:   "instance-init",
		Hidden: true,
		Usage:  "become an instance's sshd in its namespaces (started by bbr-lab up)",
		Flags:  []cli.Flag{cli.StringFlag{Name: "spec", Usage: "init spec written by bbr-lab up"}},
		Action: func(c *cli.Context) error {
			if c.String("spec") == "" {
				return errors.New("instance-init: --spec is required")
			}
			return instance.Init(c.String("spec"))
		},
	}
}

func sampleAPICommand() cli.Command {
	return cli.Command{
		Name:   "sample-api",
		Hidden: true,
		Usage:  "the sample deployment's API (started by the api job)",
		Flags: []cli.Flag{
			cli.StringFlag{Name: "listen", Usage: "host:port to serve on"},
			cli.StringFlag{Name: "maintenance-file", Usage: "answer 503 while this file exists"},
			cli.StringFlag{Name: "log", Usage: "append state changes to this file (default stderr)"},
			cli.StringFlag{Name: "pid-file", Usage: "write the pid here while running"},
		},
		Action: func(c *cli.Context) error {
			if c.String("listen") == "" || c.String("maintenance-file") == "" {
				return errors.New("sample-api: --listen and --maintenance-file are required")
			}
			log := os.Stderr
			if c.String("log") != "" {
				f, err := os.OpenFile(c.String("log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
				if err != nil {
					return fmt.Errorf("opening log: %w", err)
				}
				defer f.Close()
				log = f
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return sample.ServeAPI(ctx, sample.APIConfig{
				Listen:          c.String("listen"),
				MaintenanceFile: c.String("maintenance-file"),
				Log:             log,
				PidFile:         c.String("pid-file"),
			})
		},
	}
}
