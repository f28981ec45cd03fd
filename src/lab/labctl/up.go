package labctl

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
	"syscall"
	"time"

	"github.com/bbr-release/bbr/src/lab/deploy"
	"github.com/bbr-release/bbr/src/lab/directord"
	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/labdir"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/pki"
)

// UpOptions are `bbr-lab up`'s flags and arguments.
type UpOptions struct {
	Dir             string
	DirectorAddress string
	UAAAddress      string
	Auth            string
	Subnet          string
	CompileCache    string
	Deployments     []string
}

// Up starts a lab: every instance of every deployment, then the Director
// daemon, and writes the summary to out and the instances' progress to
// progress. Whatever fails, it says what is left running.
func Up(o UpOptions, out, progress io.Writer) error {
	began := time.Now()
	p, err := claim(o)
	if err != nil {
		return err
	}
	// From here a signal cancels ctx rather than ending up at once, so
	// that instances being started are stopped again.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	lab := p.lab
	if err := start(ctx, &lab, p.plans, progress); err != nil {
		return err
	}
	if err := writeDirectorEnv(lab); err != nil {
		return err
	}
	if err := directord.Start(ctx, lab, p.self, p.caPEM); err != nil {
		return fmt.Errorf("%w\nthe instances are running; run `bbr-lab down --dir %s` to stop them", err, lab.Dir)
	}
	printSummary(out, lab, time.Since(began))
	return nil
}

// prepared is what up has made before it starts anything: the lab's
// description without deployments, their plans, and the lab CA.
type prepared struct {
	lab   model.Lab
	self  string // the bbr-lab binary
	plans []deploy.Planned
	caPEM []byte
}

// claim checks the options, claims the lab directory and prepares all
// that starts nothing.
func claim(o UpOptions) (prepared, error) {
	if err := RequireRoot("up"); err != nil {
		return prepared{}, err
	}
	if err := checkUpOptions(o); err != nil {
		return prepared{}, err
	}
	dir, err := labdir.Path(o.Dir)
	if err != nil {
		return prepared{}, err
	}
	self, err := selfPath()
	if err != nil {
		return prepared{}, err
	}
	if err := labdir.Claim(dir); err != nil {
		return prepared{}, err
	}
	p, secret, err := prepare(o, dir, self)
	if err != nil {
		// Nothing runs yet: leave the directory as we found it, so that
		// the next up does not ask for a down.
		_ = labdir.RemoveContents(dir)
		return prepared{}, err
	}
	p.lab, err = describe(o, dir, secret)
	return p, err
}

// prepare does everything of up that starts nothing: it plans the
// deployments and makes the CA, the client secret and /var/vcap.
func prepare(o UpOptions, dir, self string) (prepared, string, error) {
	if err := checkFree(o); err != nil {
		return prepared{}, "", err
	}
	plans, err := deploy.PlanAll(o.Deployments, o.Subnet, dir, self)
	if err != nil {
		return prepared{}, "", err
	}
	ca, err := pki.LoadOrCreate(dir)
	if err != nil {
		return prepared{}, "", fmt.Errorf("creating the lab CA: %w", err)
	}
	secret, err := randomSecret()
	if err != nil {
		return prepared{}, "", err
	}
	deploy.ResolveVars(plans, deploy.Vars(o.DirectorAddress, ca.CertPEM(), secret))
	p := prepared{self: self, plans: plans, caPEM: ca.CertPEM()}
	return p, secret, labdir.EnsureVarVcap(dir)
}

// describe is the lab's description before any instance starts.
func describe(o UpOptions, dir, secret string) (model.Lab, error) {
	cache := o.CompileCache
	if cache != "" {
		var err error
		if cache, err = filepath.Abs(cache); err != nil {
			return model.Lab{}, err
		}
	}
	return model.Lab{
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
	}, nil
}

// start starts the instances and saves the lab with them, so that down
// finds them from here on.
func start(ctx context.Context, lab *model.Lab, plans []deploy.Planned, progress io.Writer) error {
	deployments, err := deploy.Start(ctx, plans, progress)
	if err != nil {
		return fmt.Errorf("%w\nthe instance logs are in %s; run `bbr-lab down --dir %s` before trying again", err, filepath.Join(lab.Dir, instance.InstancesDir), lab.Dir)
	}
	lab.Deployments = deployments
	if err := model.Save(*lab); err != nil {
		_ = deploy.StopAll(*lab, progress)
		return err
	}
	return nil
}

func checkUpOptions(o UpOptions) error {
	if o.Auth != "basic" && o.Auth != "uaa" {
		return fmt.Errorf("--auth %q: want basic or uaa", o.Auth)
	}
	for flag, addr := range map[string]string{"--director-address": o.DirectorAddress, "--uaa-address": o.UAAAddress} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s %q: %w", flag, addr, err)
		}
	}
	return deploy.CheckSubnet(o.Subnet)
}

// checkFree fails early, before any instance starts, if the Director's
// addresses are taken (by another lab, say).
func checkFree(o UpOptions) error {
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
	file := filepath.Join(lab.Dir, labdir.EnvFile)
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
		d.CACertPath, d.Client, filepath.Join(lab.Dir, labdir.EnvFile))
	printInstances(out, lab, nil)
	fmt.Fprintf(out, "\nStop it with: bbr-lab down --dir %s\n", lab.Dir)
}
