package transform

import (
	"io"
	"math"
	"strings"
	"testing"
)

// A plain size at the int64 limit (metadata a caller built, not parsed)
// must fail the read, not panic on left+1.
func TestSizedReaderAtTheInt64Limit(t *testing.T) {
	r := &sizedReader{r: strings.NewReader("abc"), left: math.MaxInt64, name: "f"}
	_, err := io.ReadAll(r)
	if err == nil || !strings.Contains(err.Error(), "fewer than its metadata records") {
		t.Fatalf("got %v, want the file called short", err)
	}
}
