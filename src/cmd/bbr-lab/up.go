package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/pki"
	"github.com/bbr-release/bbr/src/lab/sample"
)

type upOptions struct {
	Dir             string
	DirectorAddress string
	UAAAddress      string
	Auth            string
	Subnet          string
	CompileCache    string
	Deployments     []string
}

func upCommand() cli.Command {
	return cli.Command{
		Name:      "up",
		Usage:     "start a lab: instances for each deployment, then the Director API",
		ArgsUsage: "[DEPLOYMENT_DIR ...]",
		Description: `Starts, as root, one instance per instance group member of each deployment
   (an sshd on its own 127.x.y.z:22 in its own mount namespace, where /var/vcap is the
   instance's directory, with the jobs started), then the Director API on
   https://DIRECTOR_ADDRESS with a CA written to DIR/ca.pem. Credentials for bosh and bbr
   are written to DIR/director.env (source it).

   With no DEPLOYMENT_DIR, starts the embedded sample deployment (redis, postgres, api);
   "sample" among the DEPLOYMENT_DIRs (when no such directory exists) names it too.
   ` + deploymentLayout + `

EXIT STATUS
   0 the lab is up; 1 it is not (nothing is left running unless the message says so).`,
		Flags: []cli.Flag{
			dirFlag,
			cli.StringFlag{Name: "director-address", Value: "127.0.0.1:25555", Usage: "host:port of the Director API"},
			cli.StringFlag{Name: "uaa-address", Value: "127.0.0.1:8443", Usage: "host:port of the UAA token endpoint (--auth uaa)"},
			cli.StringFlag{Name: "auth", Value: "basic", Usage: "Director authentication: basic or uaa"},
			cli.StringFlag{Name: "subnet", Value: "127.77", Usage: "first two octets of the instances' addresses"},
			cli.StringFlag{Name: "compile-cache", EnvVar: "BBR_LAB_COMPILE_CACHE",
				Usage: "directory keeping the packages `bosh upload-release` releases compile to, across labs (one compilation per package version)"},
		},
		Action: func(c *cli.Context) error {
			return runUp(upOptions{
				Dir:             c.String("dir"),
				DirectorAddress: c.String("director-address"),
				UAAAddress:      c.String("uaa-address"),
				Auth:            c.String("auth"),
				Subnet:          c.String("subnet"),
				CompileCache:    c.String("compile-cache"),
				Deployments:     c.Args(),
			}, os.Stdout, os.Stderr)
		},
	}
}

func runUp(o upOptions, out, progress io.Writer) error {
	began := time.Now()
	if err := requireRoot("up"); err != nil {
		return err
	}
	if err := checkUpOptions(o); err != nil {
		return err
	}
	dir, err := labDirPath(o.Dir)
	if err != nil {
		return err
	}
	self, err := selfPath()
	if err != nil {
		return err
	}
	if err := claimLabDir(dir); err != nil {
		return err
	}
	plans, ca, secret, err := prepareLab(o, dir, self)
	if err != nil {
		// Nothing runs yet: leave the directory as we found it, so that
		// the next up does not ask for a down.
		_ = removeLabContents(dir)
		return err
	}
	cache := o.CompileCache
	if cache != "" {
		if cache, err = filepath.Abs(cache); err != nil {
			return err
		}
	}
	lab := model.Lab{
		Dir:          dir,
		Subnet:       o.Subnet,
		CompileCache: cache,
		Director: model.Director{
			Address:      o.DirectorAddress,
			UAAAddress:   o.UAAAddress,
			Auth:         o.Auth,
			Client:       "admin",
			ClientSecret: secret,
			CACertPath:   filepath.Join(dir, "ca.pem"),
		},
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	deployments, err := startInstances(ctx, plans, progress)
	if err != nil {
		return fmt.Errorf("%w\nthe instance logs are in %s; run `bbr-lab down --dir %s` before trying again", err, filepath.Join(dir, instance.InstancesDir), dir)
	}
	lab.Deployments = deployments
	if err := model.Save(lab); err != nil {
		_ = stopAll(lab, progress)
		return err
	}
	if err := writeDirectorEnv(lab); err != nil {
		return err
	}
	if err := startDirector(ctx, lab, self, ca.CertPEM()); err != nil {
		return fmt.Errorf("%w\nthe instances are running; run `bbr-lab down --dir %s` to stop them", err, dir)
	}
	printSummary(out, lab, time.Since(began))
	return nil
}

// prepareLab does everything of up that starts nothing: it plans the
// deployments and makes the CA, the client secret and /var/vcap.
func prepareLab(o upOptions, dir, self string) ([]plannedDeployment, *pki.CA, string, error) {
	if err := checkFree(o); err != nil {
		return nil, nil, "", err
	}
	plans, err := planDeployments(o, dir, self)
	if err != nil {
		return nil, nil, "", err
	}
	ca, err := pki.LoadOrCreate(dir)
	if err != nil {
		return nil, nil, "", fmt.Errorf("creating the lab CA: %w", err)
	}
	secret, err := randomSecret()
	if err != nil {
		return nil, nil, "", err
	}
	labVariables(plans, labVars(o.DirectorAddress, ca.CertPEM(), secret))
	return plans, ca, secret, ensureVarVcap(dir)
}

// labVars are the values of the ((lab_director_*)) variables.
func labVars(directorAddress string, caPEM []byte, secret string) map[string]string {
	return map[string]string{
		"((lab_director_url))":           "https://" + directorAddress,
		"((lab_director_ca_cert))":       string(caPEM),
		"((lab_director_client))":        "admin",
		"((lab_director_client_secret))": secret,
	}
}

// labVariables stands in for the Director's config server: a job property
// whose whole value is one of vars' names (e.g. "((lab_director_url))")
// gets the lab's value, which exists only once up has made it. This is how
// a deployment in the lab (a jumpbox with bbr's errands) points at the
// lab's own Director.
func labVariables(plans []plannedDeployment, vars map[string]string) {
	eachProperty(plans, func(v string) string {
		if val, ok := vars[v]; ok {
			return val
		}
		return v
	})
}

// eachProperty replaces every string in the plans' job properties, at
// any depth, with what f makes of it.
func eachProperty(plans []plannedDeployment, f func(string) string) {
	var walk func(v any) any
	walk = func(v any) any {
		switch t := v.(type) {
		case string:
			return f(t)
		case map[string]any:
			for k, e := range t {
				t[k] = walk(e)
			}
		case map[any]any:
			for k, e := range t {
				t[k] = walk(e)
			}
		case []any:
			for i, e := range t {
				t[i] = walk(e)
			}
		}
		return v
	}
	for _, p := range plans {
		for _, spec := range p.Specs {
			for _, job := range spec.Jobs {
				walk(job.Properties)
			}
		}
	}
}

func checkUpOptions(o upOptions) error {
	if o.Auth != "basic" && o.Auth != "uaa" {
		return fmt.Errorf("--auth %q: want basic or uaa", o.Auth)
	}
	for flag, addr := range map[string]string{"--director-address": o.DirectorAddress, "--uaa-address": o.UAAAddress} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s %q: %w", flag, addr, err)
		}
	}
	return checkSubnet(o.Subnet)
}

// checkFree fails early, before any instance starts, if the Director's
// addresses are taken (by another lab, say).
func checkFree(o upOptions) error {
	addrs := []string{o.DirectorAddress}
	if o.Auth == "uaa" {
		addrs = append(addrs, o.UAAAddress)
	}
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("cannot serve the Director on %s: %w", addr, err)
		}
		ln.Close()
	}
	return nil
}

// selfPath is the bbr-lab binary, re-executed for instance-init and
// director-serve and given to job scripts as $LAB_BIN.
func selfPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the bbr-lab binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	return self, nil
}

// planDeployments lays out every deployment; with no directories given it
// extracts the embedded sample into the lab directory first.
func planDeployments(o upOptions, dir, self string) ([]plannedDeployment, error) {
	dirs := slices.Clone(o.Deployments)
	if len(dirs) == 0 {
		dirs = []string{sample.Default}
	}
	for i, d := range dirs {
		if _, err := os.Stat(d); err == nil || d != sample.Default {
			continue
		}
		dst := filepath.Join(dir, deploymentsDir, sample.Default)
		if err := sample.Extract(sample.Default, dst); err != nil {
			return nil, err
		}
		dirs[i] = dst
	}
	var plans []plannedDeployment
	seen := map[string]bool{}
	for i, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", d, err)
		}
		plan, err := planDeployment(abs, o.Subnet, i+1, dir, self)
		if err != nil {
			return nil, err
		}
		if seen[plan.Name] {
			return nil, fmt.Errorf("two deployments are named %s", plan.Name)
		}
		seen[plan.Name] = true
		plans = append(plans, plan)
	}
	return plans, nil
}

func randomSecret() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating the client secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// writeDirectorEnv writes the shell file that points bosh and bbr at the
// lab. It holds the client secret: root only.
func writeDirectorEnv(lab model.Lab) error {
	content := fmt.Sprintf(`# Written by bbr-lab up. Source it to use bosh or bbr against the lab.
export BOSH_ENVIRONMENT=https://%s
export BOSH_CLIENT=%s
export BOSH_CLIENT_SECRET=%s
export BOSH_CA_CERT=%s
`, lab.Director.Address, lab.Director.Client, lab.Director.ClientSecret, lab.Director.CACertPath)
	file := filepath.Join(lab.Dir, envFile)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

func printSummary(out io.Writer, lab model.Lab, took time.Duration) {
	d := lab.Director
	fmt.Fprintf(out, "Lab up in %s (%s)\n\n", lab.Dir, took.Round(100*time.Millisecond))
	fmt.Fprintf(out, "Director  https://%s (auth %s", d.Address, d.Auth)
	if d.Auth == "uaa" {
		fmt.Fprintf(out, ", UAA https://%s", d.UAAAddress)
	}
	fmt.Fprintf(out, ")\nCA        %s\nClient    %s (secret in %s: source it for bosh and bbr)\n\n",
		d.CACertPath, d.Client, filepath.Join(lab.Dir, envFile))
	printInstances(out, lab, nil)
	fmt.Fprintf(out, "\nStop it with: bbr-lab down --dir %s\n", lab.Dir)
}
