package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bbr-release/bbr/src/lab/model"
)

// Run is one measured run of one tool on one scenario.
type Run struct {
	Scenario string  `json:"scenario"`
	Tool     string  `json:"tool"`
	Round    int     `json:"round"`
	Wall     float64 `json:"wall_seconds"`
	RSSMiB   float64 `json:"peak_rss_mib"`
	// DiskMiB is what the process wrote to local storage (its block
	// output, which counts pages it dirtied even if written back later).
	DiskMiB float64 `json:"disk_written_mib"`
	// CPU is the process's user and system time: on a machine whose cores
	// the instances and the bucket share, its own cost.
	CPU float64 `json:"cpu_seconds"`
	// LockWindow is from the first lock script's start to the last
	// unlock script's end, read from the scripts' own timestamps; Scripts
	// is the part of it spent in lock and backup scripts.
	LockWindow float64 `json:"lock_window_seconds,omitempty"`
	Scripts    float64 `json:"lock_and_backup_scripts_seconds,omitempty"`
	MiBps      float64 `json:"mib_per_second"`
	// Busy is the share of the machine's CPU time that was not idle
	// during the run (every process's, other users' too): near 1, the
	// run waited for the cores.
	Busy float64 `json:"machine_cpu_busy,omitempty"`
	// Compression is what zstd made of each file (the sample's runs).
	Compression []Ratio `json:"compression,omitempty"`
}

type usage struct{ rssMiB, diskMiB, cpu, busy float64 }

// runCommand runs cmd and returns its wall time, peak RSS and disk writes.
func runCommand(cmd *exec.Cmd) (time.Duration, usage, error) {
	busy0, total0 := cpuTimes()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return wall, usage{}, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail(string(out), 2000))
	}
	u := usage{busy: busySince(busy0, total0)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.rssMiB = float64(ru.Maxrss) / 1024              // Linux reports KiB
		u.diskMiB = float64(ru.Oublock) * 512 / (1 << 20) // 512-byte blocks
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return wall, u, nil
}

// lockWindow reads the bench.log timestamps of every job of the deployment
// and clears them for the next run.
func lockWindow(d model.Deployment) (window, scripts float64, err error) {
	var lock, unlock, backupEnd []float64
	for _, inst := range d.Instances {
		for _, job := range inst.Jobs {
			path := filepath.Join(inst.Root, "sys", "log", job, "bench.log")
			f, err := os.Open(path)
			if err != nil {
				return 0, 0, fmt.Errorf("reading the scripts' timestamps: %w", err)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fields := strings.Fields(sc.Text())
				if len(fields) != 2 {
					continue
				}
				t, _ := strconv.ParseFloat(fields[1], 64)
				switch fields[0] {
				case "lock":
					lock = append(lock, t)
				case "unlock":
					unlock = append(unlock, t)
				case "backup-end":
					backupEnd = append(backupEnd, t)
				}
			}
			f.Close()
			if err := os.Remove(path); err != nil {
				return 0, 0, err
			}
		}
	}
	if len(lock) == 0 || len(unlock) == 0 || len(backupEnd) == 0 {
		return 0, 0, fmt.Errorf("the lock scripts left no timestamps")
	}
	first := minOf(lock)
	return maxOf(unlock) - first, maxOf(backupEnd) - first, nil
}

func minOf(v []float64) float64 { s := sorted(v); return s[0] }
func maxOf(v []float64) float64 { s := sorted(v); return s[len(s)-1] }

func sorted(v []float64) []float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s
}

func median(v []float64) float64 {
	s := sorted(v)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// cpuTimes reads the machine's busy and total CPU time (jiffies) from
// /proc/stat; zeros when it cannot.
func cpuTimes() (busy, total uint64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	var idle uint64
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return total - idle, total
}

// busySince is the share of CPU time busy since cpuTimes gave busy0, total0.
func busySince(busy0, total0 uint64) float64 {
	busy, total := cpuTimes()
	if total <= total0 {
		return 0
	}
	return float64(busy-busy0) / float64(total-total0)
}
