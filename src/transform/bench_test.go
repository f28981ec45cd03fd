package transform_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/sys/unix"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/transform"
)

// The benchmark's s2: 20 instances of 50 MiB of random data, written at
// once through a local destination, as `scripts/bench`'s s2 backs them
// up. BBR_BENCH_DIR puts the backups on another file system than
// $TMPDIR's; BBR_BENCH_STREAMS and BBR_BENCH_MIB change the shape;
// BBR_BENCH_HEAP=file writes a heap profile of what is live mid-backup
// (file.plain, file.zstd+age, ...).
//
//	go test ./src/transform -run '^$' -bench S2 -benchtime 3x \
//	    -cpuprofile cpu.out -memprofile mem.out
//
// The process gets bbr's soft memory limit, as the GC works to it.
// peak-RSS-MiB is the process's peak resident memory during the last
// iteration (VmHWM, reset through /proc/self/clear_refs).
func BenchmarkS2(b *testing.B) {
	streams, size := envInt("BBR_BENCH_STREAMS", 20), int64(envInt("BBR_BENCH_MIB", 50))<<20
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	rs, err := transform.ParseRecipients([]string{id.Recipient().String()})
	if err != nil {
		b.Fatal(err)
	}
	// bbr's own soft memory limit (src/cmd/bbr), or GOMEMLIMIT's.
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(64 << 20))
	}
	// The noise is longer than any zstd window bbr writes with, and
	// outside the Go heap, so that the GC and its limit see only what
	// bbr would hold (it does count in peak-RSS-MiB: 16 MiB).
	noise, err := unix.Mmap(-1, 0, 16<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Munmap(noise)
	_, _ = rand.Read(noise)
	for _, c := range []struct {
		name string
		o    transform.Options
	}{
		{"plain", transform.Options{}},
		{"zstd", transform.Options{Compress: true}},
		{"age", transform.Options{Recipients: rs}},
		{"zstd+age", transform.Options{Compress: true, Recipients: rs}},
	} {
		b.Run(c.name, func(b *testing.B) {
			parent := os.Getenv("BBR_BENCH_DIR")
			if parent == "" {
				parent = b.TempDir()
			}
			dest := transform.Wrap(artifact.Local{Dir: parent}, c.o)
			b.SetBytes(int64(streams) * size)
			var peak float64
			cpu0 := cpuTime()
			for i := 0; b.Loop(); i++ {
				resetPeakRSS()
				start := time.Date(2026, 12, 2, 10, 0, i, 0, time.UTC)
				name := artifact.BackupName("s2", start)
				w, err := dest.Create(context.Background(), name, start)
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				if path := os.Getenv("BBR_BENCH_HEAP"); path != "" && i == 0 {
					wg.Go(func() { writeHeapProfile(b, path+"."+c.name) })
				}
				errs := make([]error, streams)
				for s := range streams {
					wg.Go(func() {
						file := fmt.Sprintf("s2-%d-data.tar", s)
						_, _, errs[s] = w.WriteTar(file, newRandomTar(noise, s*4099*512, size))
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Finish(start.Add(time.Minute), nil); err != nil {
					b.Fatal(err)
				}
				peak = peakRSS()
				b.StopTimer()
				if err := os.RemoveAll(w.Location()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(peak, "peak-RSS-MiB")
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// writeHeapProfile writes what is live half a second into the backup,
// when every stream's encoder is.
func writeHeapProfile(b *testing.B, path string) {
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Error(err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Error(err)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// randomTar is a tar of one file of size bytes taken from noise, read
// in pieces of at most 32 KiB, as an SSH channel hands them out.
type randomTar struct {
	head, tail []byte
	noise      []byte
	off        int
	left       int64
}

func newRandomTar(noise []byte, off int, size int64) *randomTar {
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "./data", Mode: 0o600, Size: size, Typeflag: tar.TypeReg}); err != nil {
		panic(err)
	}
	pad := (512 - size%512) % 512
	return &randomTar{head: hdr.Bytes(), tail: make([]byte, pad+1024), noise: noise, off: off % len(noise), left: size}
}

func (r *randomTar) Read(p []byte) (int, error) {
	p = p[:min(len(p), 32<<10)]
	switch {
	case len(r.head) > 0:
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	case r.left > 0:
		if int64(len(p)) > r.left {
			p = p[:r.left]
		}
		// x/crypto/ssh hands each packet over in a fresh slice: the
		// garbage the GC has to keep up with.
		packet := make([]byte, min(len(p), len(r.noise)-r.off))
		copy(packet, r.noise[r.off:])
		n := copy(p, packet)
		r.off = (r.off + n) % len(r.noise)
		r.left -= int64(n)
		return n, nil
	case len(r.tail) > 0:
		n := copy(p, r.tail)
		r.tail = r.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS starts VmHWM again from the current RSS (Linux).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is VmHWM in MiB, 0 where /proc has none.
func peakRSS() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkS4 reads s2's backup back as restore does: every file of
// it at once, decrypted and decompressed, checked against its size.
func BenchmarkS4(b *testing.B) {
	streams, size := envInt("BBR_BENCH_STREAMS", 20), int64(envInt("BBR_BENCH_MIB", 50))<<20
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(64 << 20))
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	rs, err := transform.ParseRecipients([]string{id.Recipient().String()})
	if err != nil {
		b.Fatal(err)
	}
	noise, err := unix.Mmap(-1, 0, 16<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Munmap(noise)
	_, _ = rand.Read(noise)
	for _, c := range []struct {
		name string
		o    transform.Options
	}{
		{"plain", transform.Options{}},
		{"zstd+age", transform.Options{Compress: true, Recipients: rs, Identities: []age.Identity{id}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			parent := os.Getenv("BBR_BENCH_DIR")
			if parent == "" {
				parent = b.TempDir()
			}
			dest := transform.Wrap(artifact.Local{Dir: parent}, c.o)
			start := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
			w, err := dest.Create(context.Background(), artifact.BackupName("s2", start), start)
			if err != nil {
				b.Fatal(err)
			}
			files := make([]string, streams)
			for s := range streams {
				files[s] = fmt.Sprintf("s2-%d-data.tar", s)
				sums, _, err := w.WriteTar(files[s], newRandomTar(noise, s*4099*512, size))
				if err == nil {
					err = w.AddInstanceArtifact("s2", s, "data", sums)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Finish(start.Add(time.Minute), nil); err != nil {
				b.Fatal(err)
			}
			src, err := dest.Open(context.Background(), artifact.BackupBase(filepath.Base(w.Location())))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(streams) * size)
			var peak float64
			cpu0 := cpuTime()
			for b.Loop() {
				resetPeakRSS()
				var wg sync.WaitGroup
				errs := make([]error, streams)
				for s := range streams {
					wg.Go(func() {
						r, err := src.Open(context.Background(), files[s])
						if err != nil {
							errs[s] = err
							return
						}
						defer r.Close()
						_, errs[s] = io.Copy(io.Discard, r)
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				peak = peakRSS()
			}
			b.ReportMetric(peak, "peak-RSS-MiB")
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}
