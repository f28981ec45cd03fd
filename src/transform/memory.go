package transform

import (
	"math"
	"runtime/debug"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// bbr runs under a soft memory limit (64 MiB, src/cmd/bbr) so that the
// GC collects the transfers' garbage before the heap doubles. An encoder
// is no garbage: it holds its match tables and window for the whole
// stream, and twenty of them took s2's live heap above the limit. The GC
// then ran back to back, and the runtime handed pages back to the kernel
// that the next allocation faulted in again: more CPU than zstd and age
// together (docs/performance.md). So each stream being encoded raises
// the limit by what it holds while it runs, and the limit still bounds
// the garbage as it did.

// encoderMemory is what a stream's zstd encoder holds at each speed
// (window 512 KiB, WithLowerEncoderMem), measured on klauspost/compress
// v1.20.1; TestEncoderMemory checks it.
var encoderMemory = map[zstd.EncoderLevel]int64{
	zstd.SpeedFastest:           1_200 << 10,
	zstd.SpeedDefault:           2_400 << 10,
	zstd.SpeedBetterCompression: 5_400 << 10,
	zstd.SpeedBestCompression:   36 << 20,
}

// streamBuffers is what a stream holds besides its encoder: age's chunk
// and its ciphertext, the stored file's write buffer.
const streamBuffers = 512 << 10

// streamMemory is what encoding one stream with o keeps live.
func (o Options) streamMemory() int64 {
	n := int64(streamBuffers)
	if o.Compress {
		n += encoderMemory[o.encoderLevel()]
	}
	return n
}

func (o Options) encoderLevel() zstd.EncoderLevel {
	level := o.Level
	if level == 0 {
		level = DefaultLevel
	}
	return zstd.EncoderLevelFromZstd(level)
}

var limitMu sync.Mutex

// reserve raises the process's soft memory limit by n bytes until the
// function it returns is called; it does nothing when no limit is set.
func reserve(n int64) (release func()) {
	limitMu.Lock()
	defer limitMu.Unlock()
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 || n <= 0 {
		return func() {}
	}
	debug.SetMemoryLimit(limit + n)
	return func() {
		limitMu.Lock()
		defer limitMu.Unlock()
		debug.SetMemoryLimit(debug.SetMemoryLimit(-1) - n)
	}
}
