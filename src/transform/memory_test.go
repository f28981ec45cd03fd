package transform

import (
	"crypto/rand"
	"io"
	"runtime"
	"runtime/debug"
	"testing"
)

// The estimates must cover what an encoder allocates, and not by much:
// a library upgrade that changes them shows here.
func TestEncoderMemory(t *testing.T) {
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data[:2<<20]) // incompressible, then runs: every buffer grows
	for _, level := range []int{1, 3, 7, 19} {
		o := Options{Compress: true, Level: level}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w, flush, err := o.chain(io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += 32 << 10 {
			if _, err := w.Write(data[off : off+32<<10]); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		if err := flush(); err != nil {
			t.Fatal(err)
		}
		held := int64(after.TotalAlloc - before.TotalAlloc)
		if est := encoderMemory[o.encoderLevel()]; est < held || est > held*5/4 {
			t.Errorf("level %d: the encoder allocated %d KiB, the estimate is %d KiB", level, held>>10, est>>10)
		}
	}
}

func TestReserve(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(64 << 20))
	release := reserve(3 << 20)
	if got := debug.SetMemoryLimit(-1); got != 67<<20 {
		t.Errorf("the limit is %d while reserved", got)
	}
	release()
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("the limit is %d once released", got)
	}
}
