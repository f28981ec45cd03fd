package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Figure summarises one tool on one scenario over the rounds.
type Figure struct {
	Scenario     string  `json:"scenario"`
	Tool         string  `json:"tool"`
	WallMin      float64 `json:"wall_min_seconds"`
	WallMedian   float64 `json:"wall_median_seconds"`
	LockMedian   float64 `json:"lock_window_median_seconds,omitempty"`
	ScriptMedian float64 `json:"lock_and_backup_scripts_median_seconds,omitempty"`
	RSSMax       float64 `json:"peak_rss_max_mib"`
	DiskMax      float64 `json:"disk_written_max_mib"`
	MiBps        float64 `json:"mib_per_second_median"`
	BusyMedian   float64 `json:"machine_cpu_busy_median,omitempty"`
}

// Target is one goal of issue 7 and whether this run met it.
type Target struct {
	What  string  `json:"what"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Met   bool    `json:"met"`
}

// Summarise reduces the runs to figures and checks the targets.
func Summarise(runs []Run) ([]Figure, []Target) {
	type key struct{ s, t string }
	groups := map[key][]Run{}
	var order []key
	for _, r := range runs {
		k := key{r.Scenario, r.Tool}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	figs := map[key]Figure{}
	var out []Figure
	for _, k := range order {
		var wall, lock, scripts, speed, busy []float64
		f := Figure{Scenario: k.s, Tool: k.t}
		for _, r := range groups[k] {
			wall = append(wall, r.Wall)
			speed = append(speed, r.MiBps)
			busy = append(busy, r.Busy)
			if r.LockWindow > 0 {
				lock = append(lock, r.LockWindow)
				scripts = append(scripts, r.Scripts)
			}
			f.RSSMax = max(f.RSSMax, r.RSSMiB)
			f.DiskMax = max(f.DiskMax, r.DiskMiB)
		}
		f.WallMin, f.WallMedian, f.MiBps, f.BusyMedian = minOf(wall), median(wall), median(speed), median(busy)
		if len(lock) > 0 {
			f.LockMedian, f.ScriptMedian = median(lock), median(scripts)
		}
		figs[k] = f
		out = append(out, f)
	}

	var targets []Target
	ratio := func(what, s, a, b string, limit float64) {
		fa, okA := figs[key{s, a}]
		fb, okB := figs[key{s, b}]
		if okA && okB && fb.WallMedian > 0 {
			v := fa.WallMedian / fb.WallMedian
			targets = append(targets, Target{What: what, Value: v, Limit: limit, Met: v <= limit})
		}
	}
	ratio("s1 ours/floor wall", "s1", "ours", "floor", 1.3)
	ratio("s1 ours/floor+sync wall (both durable)", "s1", "ours", "floor+sync", 1.3)
	ratio("s1 ours/upstream wall", "s1", "ours", "upstream", 0.6)
	ratio("s2 ours/upstream wall", "s2", "ours", "upstream", 0.5)
	ratio("s3 ours/upstream wall", "s3", "ours", "upstream", 0.5)
	ratio("s4 ours/upstream wall", "s4", "ours", "upstream", 0.4)
	ratio("s1v validate/sha256sum wall", "s1v", "ours", "sha256sum", 1.2)
	ratio("s1 backup zstd+age/plain wall (incompressible)", "s1", toolZage, "ours", 1.3)
	ratio("s4 restore of zstd+age/plain wall", "s4", toolZage, "ours", 1.3)
	ratio("s1 backup to bucket/local wall", "s1", toolBucket, "ours", 1.25)
	ratio("s1r restore from bucket/local wall", "s1r", toolBucket, "ours", 1.25)
	ratio("s1 backup to bucket/s3-floor wall", "s1", toolBucket, toolS3Floor, 1.25)
	for _, f := range out {
		if f.Tool == toolBucket && f.Scenario == "s1" {
			targets = append(targets,
				Target{What: "s1 ours-s3 peak RSS MiB", Value: f.RSSMax, Limit: 150, Met: f.RSSMax <= 150},
				Target{What: "s1 ours-s3 local disk written MiB", Value: f.DiskMax, Limit: 0, Met: f.DiskMax == 0})
		}
		if f.Tool != "ours" {
			continue
		}
		targets = append(targets, Target{What: f.Scenario + " ours peak RSS MiB", Value: f.RSSMax, Limit: 100, Met: f.RSSMax < 100})
		if f.LockMedian > 0 {
			over := f.LockMedian - f.ScriptMedian
			targets = append(targets, Target{What: f.Scenario + " ours lock window beyond scripts (s)", Value: over, Limit: 1, Met: over <= 1})
		}
	}
	for _, g := range ScaleGrowth(out) {
		if g.Tool == "ours" {
			targets = append(targets, Target{What: fmt.Sprintf("n%d-n%d ours lock growth/lab's", g.FromN, g.ToN), Value: g.AgainstTheLab,
				Limit: scaleGrowthLimit, Met: g.AgainstTheLab <= scaleGrowthLimit})
		}
	}
	return out, targets
}

// scaleGrowthLimit is how much faster than the lab's own cost ours' lock
// window may grow with N: the lab's, plus room for the noise of one run.
const scaleGrowthLimit = 1.25

// Print writes the figures and targets as tables.
func Print(w io.Writer, scenarios []Scenario, figs []Figure, targets []Target) {
	fmt.Fprintln(w, "\nscenarios:")
	for _, s := range scenarios {
		fmt.Fprintf(w, "  %s  %s (%d MiB)\n", s.Key, s.Title, s.TotalMiB())
		if s.Restore {
			fmt.Fprintf(w, "  s4  restore of %s\n", s.Key)
		}
		if s.Floor {
			fmt.Fprintf(w, "  %sv  bbr validate of the %s backup, and sha256sum of its tar\n", s.Key, s.Key)
		}
		if s.Floor || s.Restore {
			fmt.Fprintf(w, "  %s: with --compress --encrypt-to (zstd + age)\n", toolZage)
		}
		if s.LockFloor {
			fmt.Fprintf(w, "  %s %s: the same scripts over one SSH connection per instance opened beforehand, %d at a time: the lab's own cost\n", s.Key, toolLockFloor, lockFloorParallelism)
		}
		if s.Bucket {
			fmt.Fprintf(w, "  %s  restore of %s; %s: to and from a SeaweedFS bucket, %s: one PutObject of the data\n", s.Key+restoreSuffix, s.Key, toolBucket, toolS3Floor)
		}
	}
	fmt.Fprintf(w, "\n%-4s %-10s %9s %9s %10s %10s %9s %9s %9s\n", "", "tool", "wall min", "wall med", "lock win", "scripts", "MiB/s", "RSS MiB", "disk MiB")
	for _, f := range figs {
		lock, scripts := "-", "-"
		if f.LockMedian > 0 {
			lock, scripts = fmt.Sprintf("%.3fs", f.LockMedian), fmt.Sprintf("%.3fs", f.ScriptMedian)
		}
		rss := "-"
		if f.RSSMax > 0 {
			rss = fmt.Sprintf("%.1f", f.RSSMax)
		}
		fmt.Fprintf(w, "%-4s %-10s %8.2fs %8.2fs %10s %10s %9.0f %9s %9.0f\n", f.Scenario, f.Tool, f.WallMin, f.WallMedian, lock, scripts, f.MiBps, rss, f.DiskMax)
	}
	printScale(w, figs)
	fmt.Fprintln(w, "\ntargets:")
	for _, t := range targets {
		mark := "met"
		if !t.Met {
			mark = "NOT MET"
		}
		fmt.Fprintf(w, "  %-42s %8.2f  (limit %.2f)  %s\n", t.What, t.Value, t.Limit, mark)
	}
}

// scaleN is the instance count of a scale scenario's key ("n50" is 50).
func scaleN(key string) (int, bool) {
	rest, ok := strings.CutPrefix(key, "n")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

// Growth is how one tool's lock window grows from the smallest scale
// scenario to the largest, beside the lab's own (the lock floor's).
type Growth struct {
	Tool          string  `json:"tool"`
	FromN         int     `json:"from_n"`
	ToN           int     `json:"to_n"`
	PerInstance   float64 `json:"lock_window_seconds_per_added_instance"`
	LabPerInst    float64 `json:"lock_floor_seconds_per_added_instance"`
	AgainstTheLab float64 `json:"against_the_lab"`
}

// ScaleGrowth compares each tool's lock-window growth over the scale
// scenarios with the lock floor's: the seconds each added instance adds
// to the median lock window, from the smallest N measured to the largest,
// and its ratio to the floor's. A ratio near 1 means the tool's window
// grows as the lab's own cost of running the scripts does.
func ScaleGrowth(figs []Figure) []Growth {
	lock := map[string]map[int]float64{}
	var ns []int
	for _, f := range figs {
		n, ok := scaleN(f.Scenario)
		if !ok || f.LockMedian <= 0 {
			continue
		}
		if lock[f.Tool] == nil {
			lock[f.Tool] = map[int]float64{}
		}
		lock[f.Tool][n] = f.LockMedian
		if !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	if len(ns) < 2 {
		return nil
	}
	from, to := ns[0], ns[len(ns)-1]
	floor, ok := lock[toolLockFloor]
	if !ok || floor[from] == 0 || floor[to] == 0 {
		return nil
	}
	labSlope := (floor[to] - floor[from]) / float64(to-from)
	var out []Growth
	for _, tool := range []string{"ours", "upstream"} {
		l := lock[tool]
		if l[from] == 0 || l[to] == 0 {
			continue
		}
		g := Growth{Tool: tool, FromN: from, ToN: to, PerInstance: (l[to] - l[from]) / float64(to-from), LabPerInst: labSlope}
		if labSlope > 0 {
			g.AgainstTheLab = g.PerInstance / labSlope
		}
		out = append(out, g)
	}
	return out
}

// printScale writes the scale scenarios' figures against N: wall, lock
// window, the window per instance and against the lock floor's, then how
// each tool's window grows with N beside the lab's.
func printScale(w io.Writer, figs []Figure) {
	type row struct {
		n int
		f Figure
	}
	var rows []row
	floor := map[int]float64{}
	for _, f := range figs {
		if n, ok := scaleN(f.Scenario); ok {
			rows = append(rows, row{n, f})
			if f.Tool == toolLockFloor {
				floor[n] = f.LockMedian
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	order := map[string]int{"ours": 0, "upstream": 1, toolLockFloor: 2}
	slices.SortStableFunc(rows, func(a, b row) int {
		if a.n != b.n {
			return a.n - b.n
		}
		return order[a.f.Tool] - order[b.f.Tool]
	})
	fmt.Fprintf(w, "\nscale: one group of N instances, 1 MiB each (medians; %s: the same scripts, least client)\n", toolLockFloor)
	fmt.Fprintf(w, "%5s %-10s %9s %10s %13s %12s %13s\n", "N", "tool", "wall", "lock win", "per instance", "/lock-floor", "machine busy")
	for _, r := range rows {
		against := "-"
		if fl := floor[r.n]; fl > 0 && r.f.Tool != toolLockFloor {
			against = fmt.Sprintf("%.2f", r.f.LockMedian/fl)
		}
		fmt.Fprintf(w, "%5d %-10s %8.2fs %9.3fs %11.1fms %12s %12.0f%%\n", r.n, r.f.Tool, r.f.WallMedian, r.f.LockMedian,
			1000*r.f.LockMedian/float64(r.n), against, 100*r.f.BusyMedian)
	}
	for _, g := range ScaleGrowth(figs) {
		fmt.Fprintf(w, "lock window growth n%d->n%d: %s +%.1f ms per added instance, the lab's own (%s) +%.1f ms: %.2fx the lab's\n",
			g.FromN, g.ToN, g.Tool, 1000*g.PerInstance, toolLockFloor, 1000*g.LabPerInst, g.AgainstTheLab)
	}
}
