package bench

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/director"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/objectstore"
)

// Options configure a benchmark run.
type Options struct {
	BBR, Upstream, Lab string // binaries; Upstream may be empty
	// Weed is SeaweedFS, for the bucket figures; empty skips them.
	Weed   string
	Work   string // scratch directory (artifacts, lab)
	Rounds int
	Scale  int    // divide data sizes (a quick smoke run)
	Only   string // comma-separated scenario keys; empty = all
	// Sample adds the lab's sample deployment (Redis, PostgreSQL) for the
	// compression ratio on real data.
	Sample bool
	Log    io.Writer
}

// Bench runs every tool on every scenario, Rounds times, in one lab.
type Bench struct {
	opts  Options
	lab   model.Lab
	env   []string
	runs  []Run
	s3    *objectstore.Server
	s3Env []string
	// The age key the transformed runs encrypt to.
	identity, recipient string
}

// Measure brings the lab up, measures, takes the lab down, returns the runs.
func Measure(ctx context.Context, opts Options) ([]Run, []Scenario, error) {
	scenarios, err := Select(Scenarios(opts.Scale), opts.Only)
	if err != nil {
		return nil, nil, err
	}
	labDir := filepath.Join(opts.Work, "lab")
	args := []string{"up", "--dir", labDir, "--director-address", "127.0.0.1:25640", "--uaa-address", "127.0.0.1:8640", "--subnet", "127.81"}
	for _, s := range scenarios {
		dir, err := WriteDeployment(filepath.Join(opts.Work, "deployments"), s)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, dir)
	}
	if opts.Sample {
		args = append(args, "sample")
	}
	fmt.Fprintf(opts.Log, "starting the lab (%d instances, %d MiB of random data)...\n", totalInstances(scenarios), totalMiB(scenarios))
	upStart := time.Now()
	if out, err := exec.CommandContext(ctx, opts.Lab, args...).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("bbr-lab up: %w\n%s", err, out)
	}
	fmt.Fprintf(opts.Log, "the lab is up (%.1fs)\n", time.Since(upStart).Seconds())
	defer func() { _ = exec.Command(opts.Lab, "down", "--dir", labDir).Run() }()
	lab, err := model.Load(labDir)
	if err != nil {
		return nil, nil, err
	}
	b := &Bench{opts: opts, lab: lab, env: []string{
		"BOSH_ENVIRONMENT=https://" + lab.Director.Address, "BOSH_CLIENT=" + lab.Director.Client,
		"BOSH_CLIENT_SECRET=" + lab.Director.ClientSecret, "BOSH_CA_CERT=" + lab.Director.CACertPath,
	}}
	if opts.Weed != "" && slices.ContainsFunc(scenarios, func(s Scenario) bool { return s.Bucket }) {
		stop, err := b.startBucket()
		if err != nil {
			return nil, nil, fmt.Errorf("starting SeaweedFS: %w", err)
		}
		defer stop()
	}
	if err := b.keys(); err != nil {
		return nil, nil, err
	}
	for round := 1; round <= opts.Rounds; round++ {
		for _, s := range scenarios {
			if err := b.scenario(ctx, s, round); err != nil {
				return b.runs, scenarios, err
			}
		}
	}
	return b.runs, scenarios, b.sampleRatios(ctx)
}

func (b *Bench) tools() map[string]string {
	t := map[string]string{"ours": b.opts.BBR}
	if b.opts.Upstream != "" {
		t["upstream"] = b.opts.Upstream
	}
	return t
}

func (b *Bench) scenario(ctx context.Context, s Scenario, round int) error {
	dep, _ := b.lab.Find(s.Deployment)
	for _, tool := range []string{"ours", "upstream"} {
		bin, ok := b.tools()[tool]
		if !ok {
			continue
		}
		artDir := filepath.Join(b.opts.Work, "artifacts", tool, s.Key)
		_ = os.RemoveAll(artDir)
		if err := os.MkdirAll(artDir, 0o700); err != nil {
			return err
		}
		if err := b.backup(ctx, s, tool, round, bin, nil, "--artifact-path", artDir); err != nil {
			return err
		}
		if s.Restore {
			art, err := onlyEntry(artDir)
			if err != nil {
				return err
			}
			restore := s
			restore.Key = "s4"
			run, err := b.measure(ctx, restore, tool, round, bin, nil, "deployment", "-d", s.Deployment, "restore", "--artifact-path", art)
			if err != nil {
				return err
			}
			b.record(run)
		}
		if s.Floor && tool == "ours" {
			if err := b.validateRuns(ctx, s, round, artDir); err != nil {
				return err
			}
		}
		if (s.Floor || s.Restore) && tool == "ours" {
			if err := b.transformRuns(ctx, s, round); err != nil {
				return err
			}
		}
		if s.LockFloor && tool == "ours" {
			run, err := b.lockFloor(ctx, s, round)
			if err != nil {
				return err
			}
			b.record(run)
		}
		if s.Bucket && tool == "ours" && b.s3 != nil {
			art, err := onlyEntry(artDir)
			if err != nil {
				return err
			}
			if err := b.bucketRuns(ctx, s, round, art); err != nil {
				return err
			}
		}
		_ = os.RemoveAll(artDir)
	}
	if s.Floor {
		runs, err := b.floor(ctx, s, dep, round)
		if err != nil {
			return err
		}
		for _, run := range runs {
			b.record(run)
		}
	}
	return nil
}

// backup measures a backup of s with args, and its lock window, and
// records them.
func (b *Bench) backup(ctx context.Context, s Scenario, tool string, round int, bin string, env []string, args ...string) error {
	run, err := b.measure(ctx, s, tool, round, bin, env, append([]string{"deployment", "-d", s.Deployment, "backup"}, args...)...)
	if err != nil {
		return err
	}
	dep, _ := b.lab.Find(s.Deployment)
	if run.LockWindow, run.Scripts, err = lockWindow(dep); err != nil {
		return err
	}
	b.record(run)
	return nil
}

// measure runs bin with args and the lab's environment plus env.
func (b *Bench) measure(ctx context.Context, s Scenario, tool string, round int, bin string, env []string, args ...string) (Run, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), b.env...), env...)
	cmd.Dir = b.opts.Work
	settle()
	wall, usage, err := runCommand(cmd)
	if err != nil {
		return Run{}, fmt.Errorf("%s on %s: %w", tool, s.Key, err)
	}
	return Run{Scenario: s.Key, Tool: tool, Round: round, Wall: wall.Seconds(), RSSMiB: usage.rssMiB, DiskMiB: usage.diskMiB, CPU: usage.cpu, Busy: usage.busy,
		MiBps: float64(s.TotalMiB()) / wall.Seconds()}, nil
}

func (b *Bench) record(r Run) {
	b.runs = append(b.runs, r)
	fmt.Fprintf(b.opts.Log, "round %d %-3s %-8s %7.2fs", r.Round, r.Scenario, r.Tool, r.Wall)
	if r.RSSMiB > 0 {
		fmt.Fprintf(b.opts.Log, " %6.1f MiB RSS %6.2fs CPU", r.RSSMiB, r.CPU)
	}
	if r.Busy > 0 {
		fmt.Fprintf(b.opts.Log, "  machine %3.0f%% busy", 100*r.Busy)
	}
	if r.LockWindow > 0 {
		fmt.Fprintf(b.opts.Log, "  lock window %.3fs (scripts %.3fs)", r.LockWindow, r.Scripts)
	}
	fmt.Fprintln(b.opts.Log)
}

// floor is the least a verified copy costs: OpenSSH streams a tar of the
// data to a file, then every file in it is hashed. It returns two runs:
// "floor", as the issue defines it, and "floor+sync", the same plus an
// fsync of the file before hashing, the least a durable verified copy
// costs (bbr syncs every artifact file before it counts).
func (b *Bench) floor(ctx context.Context, s Scenario, dep model.Deployment, round int) ([]Run, error) {
	inst := dep.Instances[0]
	keyPath, user, cleanup, err := b.sshUser(ctx, s.Deployment, inst.Group, inst.ID)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	known := filepath.Join(b.opts.Work, "known_hosts")
	if err := os.WriteFile(known, []byte(inst.IP+" "+inst.HostPublicKey+"\n"), 0o600); err != nil {
		return nil, err
	}
	out := filepath.Join(b.opts.Work, "floor.tar")
	defer os.Remove(out)
	settle()
	start := time.Now()
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "ssh", "-i", keyPath, "-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+known,
		"-o", "StrictHostKeyChecking=yes", user+"@"+inst.IP, "sudo tar -C /var/vcap/store/blob -c .")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("floor ssh: %w %s", err, stderr.String())
	}
	syncStart := time.Now()
	if err := f.Sync(); err != nil {
		return nil, err
	}
	syncTime := time.Since(syncStart)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if _, err := artifact.SumTar(bufio.NewReaderSize(f, 1<<20)); err != nil {
		return nil, err
	}
	durable := time.Since(start)
	run := func(tool string, wall time.Duration) Run {
		return Run{Scenario: s.Key, Tool: tool, Round: round, Wall: wall.Seconds(), MiBps: float64(s.TotalMiB()) / wall.Seconds()}
	}
	return []Run{run("floor", durable-syncTime), run("floor+sync", durable)}, nil
}

// sshUser asks the lab Director for an SSH user on every instance of
// group, as bbr would; cleanup removes it from the instance id, or from
// the whole group when id is empty.
func (b *Bench) sshUser(ctx context.Context, deployment, group, id string) (keyPath, user string, cleanup func(), err error) {
	ca, err := os.ReadFile(b.lab.Director.CACertPath)
	if err != nil {
		return "", "", nil, err
	}
	dir, err := director.New(context.Background(), director.Config{URL: "https://" + b.lab.Director.Address, Client: b.lab.Director.Client,
		ClientSecret: b.lab.Director.ClientSecret, CACert: string(ca)}, boshlog.NewLogger(boshlog.LevelNone))
	if err != nil {
		return "", "", nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", "", nil, err
	}
	keyPath = filepath.Join(b.opts.Work, "floor_key")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", "", nil, err
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	user = "bosh_benchfloor"
	if _, err := dir.SetUpSSH(ctx, deployment, group, user, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))); err != nil {
		return "", "", nil, err
	}
	return keyPath, user, func() { _ = dir.CleanUpSSH(context.Background(), deployment, group, id, user) }, nil
}

// validateRuns measures `bbr validate` of the backup in artDir (key
// <scenario>v) beside sha256sum of its tar: checking a backup should cost
// about what hashing it does.
func (b *Bench) validateRuns(ctx context.Context, s Scenario, round int, artDir string) error {
	art, err := onlyEntry(artDir)
	if err != nil {
		return err
	}
	v := s
	v.Key = s.Key + "v"
	run, err := b.measure(ctx, v, "ours", round, b.opts.BBR, nil, "validate", "--artifact-path", art)
	if err != nil {
		return err
	}
	b.record(run)
	tars, err := filepath.Glob(filepath.Join(art, "*.tar"))
	if err != nil || len(tars) == 0 {
		return fmt.Errorf("no tar in %s", art)
	}
	run, err = b.measure(ctx, v, "sha256sum", round, "sha256sum", nil, tars...)
	if err != nil {
		return err
	}
	b.record(run)
	return nil
}

func onlyEntry(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		return "", fmt.Errorf("expected one artifact in %s", dir)
	}
	return filepath.Join(dir, entries[0].Name()), nil
}

func totalInstances(ss []Scenario) int {
	n := 0
	for _, s := range ss {
		n += s.Instances
	}
	return n
}

func totalMiB(ss []Scenario) int {
	n := 0
	for _, s := range ss {
		n += s.TotalMiB()
	}
	return n
}

// settle makes every run start from the same state: no SSH user of an
// earlier run left (upstream's SSH cleanup is fire-and-forget, so the lab's
// agent may still be removing its user and killing its sessions when it
// exits, and the next tool would wait behind that), and no dirty pages of
// earlier runs to write back.
func settle() {
	deadline := time.Now().Add(30 * time.Second)
	for labUsersLeft() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Sync()
}

// labUsersLeft says whether any user the lab made still exists.
func labUsersLeft() bool {
	raw, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Split(line, ":"); len(f) > 4 && f[4] == "bbr-lab" {
			return true
		}
	}
	return false
}
