package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"filippo.io/age"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/lab/model"
)

// toolZage is this bbr with --compress and --encrypt-to: on s1 (random,
// incompressible data: the transforms' cost, nothing saved) against the
// plain backup, and on s2's restore (key s4) against the plain restore.
// On the lab's sample deployment (key "db") it reports the compression
// ratio on real Redis and PostgreSQL data.
const toolZage = "ours-zage"

// keys makes the age key the transformed runs encrypt to, in the work
// directory (0600).
func (b *Bench) keys() error {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	b.identity = filepath.Join(b.opts.Work, "backup.key")
	b.recipient = id.Recipient().String()
	return os.WriteFile(b.identity, []byte(id.String()+"\n"), 0o600)
}

func (b *Bench) zageFlags() []string {
	return []string{"--compress", "--encrypt-to", b.recipient}
}

// transformRuns backs s up with zstd + age and, for s2, restores that.
func (b *Bench) transformRuns(ctx context.Context, s Scenario, round int) error {
	artDir := filepath.Join(b.opts.Work, "artifacts", toolZage, s.Key)
	_ = os.RemoveAll(artDir)
	if err := os.MkdirAll(artDir, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(artDir)
	if err := b.backup(ctx, s, toolZage, round, b.opts.BBR, nil, append([]string{"--artifact-path", artDir}, b.zageFlags()...)...); err != nil {
		return err
	}
	if !s.Restore {
		return nil
	}
	art, err := onlyEntry(artDir)
	if err != nil {
		return err
	}
	restore := s
	restore.Key = "s4"
	run, err := b.measure(ctx, restore, toolZage, round, b.opts.BBR, nil,
		"deployment", "-d", s.Deployment, "restore", "--artifact-path", art, "--identity-file", b.identity)
	if err != nil {
		return err
	}
	b.record(run)
	return nil
}

// sampleRatios fills the sample deployment with Redis keys and
// PostgreSQL rows, backs it up plain and with zstd + age, and reports
// each file's compression ratio and the throughput of both.
func (b *Bench) sampleRatios(ctx context.Context) error {
	dep, ok := b.lab.Find("sample")
	if !ok {
		return nil
	}
	if err := seedSample(ctx, dep); err != nil {
		return err
	}
	for _, tool := range []string{"ours", toolZage} {
		artDir := filepath.Join(b.opts.Work, "artifacts", tool, "db")
		_ = os.RemoveAll(artDir)
		if err := os.MkdirAll(artDir, 0o700); err != nil {
			return err
		}
		args := []string{"deployment", "-d", "sample", "backup", "--artifact-path", artDir}
		if tool == toolZage {
			args = append(args, b.zageFlags()...)
		}
		db := Scenario{Key: "db"}
		run, err := b.measure(ctx, db, tool, 1, b.opts.BBR, nil, args...)
		if err != nil {
			return err
		}
		art, err := onlyEntry(artDir)
		if err != nil {
			return err
		}
		src, err := artifact.Open(art)
		if err != nil {
			return err
		}
		files, err := src.Files()
		if err != nil {
			return err
		}
		meta := src.Metadata()
		var plain int64
		for file := range meta.Files() {
			e, ok := meta.Encodings[file]
			if !ok {
				plain += files[file]
				continue
			}
			plain += e.PlainSize
			run.Compression = append(run.Compression, Ratio{File: file, PlainMiB: mib(e.PlainSize), StoredMiB: mib(e.Size)})
		}
		run.MiBps = mib(plain) / run.Wall
		sort.Slice(run.Compression, func(i, j int) bool { return run.Compression[i].File < run.Compression[j].File })
		b.record(run)
		for _, r := range run.Compression {
			fmt.Fprintf(b.opts.Log, "zstd on the sample's %s: %.1f MiB -> %.1f MiB stored (%.1fx)\n", r.File, r.PlainMiB, r.StoredMiB, r.PlainMiB/r.StoredMiB)
		}
		_ = os.RemoveAll(artDir)
	}
	return nil
}

// Ratio is what zstd made of one of the sample deployment's files.
type Ratio struct {
	File      string  `json:"file"`
	PlainMiB  float64 `json:"plain_mib"`
	StoredMiB float64 `json:"stored_mib"`
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// seedSample writes 200,000 Redis keys into each Redis and 1,000,000
// rows into PostgreSQL: data shaped like a platform's, not random.
func seedSample(ctx context.Context, dep model.Deployment) error {
	var script strings.Builder
	for _, inst := range dep.Instances {
		switch inst.Group {
		case "redis":
			fmt.Fprintf(&script, "awk 'BEGIN{for(i=0;i<200000;i++) printf \"SET user:%%d:session id=%%d;role=developer;org=org-%%d;active=true\\n\", i, i, i%%50}' | redis-cli -h %s -p 6379 --pipe >/dev/null\n", inst.IP)
		case "postgres":
			fmt.Fprintf(&script, "psql -h %s -U postgres -d demo -q -c \"CREATE TABLE IF NOT EXISTS bench_accounts (id int PRIMARY KEY, owner text, balance numeric, created timestamptz); "+
				"INSERT INTO bench_accounts SELECT g, 'owner ' || g, g * 1.5, now() - g * interval '1 minute' FROM generate_series(1, 1000000) g ON CONFLICT DO NOTHING\"\n", inst.IP)
		}
	}
	out, err := execShell(ctx, script.String())
	if err != nil {
		return fmt.Errorf("seeding the sample deployment: %w\n%s", err, out)
	}
	return nil
}

func execShell(ctx context.Context, script string) ([]byte, error) {
	return exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script).CombinedOutput()
}
