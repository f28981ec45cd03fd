// Command bbr-bench measures bbr in the lab against the OpenSSH floor and,
// with --upstream, upstream bbr: see scripts/bench and docs/performance.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bbr-release/bbr/src/lab/bench"
)

func main() {
	var opts bench.Options
	var out string
	flag.StringVar(&opts.BBR, "bbr", "bin/bbr", "this bbr")
	flag.StringVar(&opts.Lab, "lab", "bin/bbr-lab", "bbr-lab")
	flag.StringVar(&opts.Upstream, "upstream", "", "an upstream bbr binary to compare with (optional)")
	flag.StringVar(&opts.Weed, "weed", "", "SeaweedFS's weed binary: s1 is also backed up to and restored from a bucket (optional)")
	flag.IntVar(&opts.Rounds, "rounds", 3, "rounds per figure (min and median are reported)")
	flag.IntVar(&opts.Scale, "scale", 1, "divide the data sizes by this (1 = the issue's sizes)")
	flag.StringVar(&opts.Only, "scenarios", "", "comma-separated scenarios to run (s1,s2,s3,s4,n10,n50,n100; scale = the three n); default s1-s4")
	flag.BoolVar(&opts.Sample, "sample", true, "also deploy the lab's sample deployment (Redis, PostgreSQL) for zstd's ratio on real data")
	flag.StringVar(&out, "out", "bin/bench.json", "where the JSON result goes")
	flag.Parse()
	if opts.Rounds < 1 || opts.Scale < 1 {
		fmt.Fprintln(os.Stderr, "--rounds and --scale must be at least 1")
		os.Exit(2)
	}
	if _, err := bench.Select(bench.Scenarios(opts.Scale), opts.Only); err != nil {
		fmt.Fprintln(os.Stderr, "--scenarios:", err)
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the benchmark runs the lab, which needs root: sudo scripts/bench")
		os.Exit(2)
	}
	work, err := os.MkdirTemp("/var/tmp", "bbr-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(work)
	// The lab's SSH users must traverse it (sshd reads their keys as them).
	if err := os.Chmod(work, 0o711); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts.Work, opts.Log = work, os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runs, scenarios, err := bench.Measure(ctx, opts)
	figs, targets := bench.Summarise(runs)
	bench.Print(os.Stdout, scenarios, figs, targets)
	raw, _ := json.MarshalIndent(map[string]any{"runs": runs, "figures": figs, "targets": targets, "rounds": opts.Rounds, "scale": opts.Scale, "upstream": opts.Upstream}, "", "  ")
	if werr := os.WriteFile(out, raw, 0o644); werr != nil {
		fmt.Fprintln(os.Stderr, werr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmark failed:", err)
		os.Exit(1)
	}
	fmt.Printf("\nresult written to %s\n", out)
}
