package instance

import (
	"bytes"
	"reflect"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

// The fuzz target runs as a plain test over its seed corpus
// (testdata/fuzz/FuzzParseChecksums) with `go test`, and explores with
// scripts/fuzz.

// FuzzParseChecksums: the checksum script's output either is refused or
// gives only names `find .` prints and lowercase sha256s, and rendering
// them again in the same format parses to the same map.
func FuzzParseChecksums(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	f.Add([]byte(opensslMarker + "\n" + sum + " *./a.txt\n" + sum + " *./sub dir/with space\n"))
	f.Add([]byte(sum + "  ./a.txt\x00" + sum + "  ./new\nline\x00"))
	f.Fuzz(func(t *testing.T, out []byte) {
		sums, err := ParseChecksums(out)
		if err != nil {
			if sums != nil {
				t.Fatalf("checksums returned with an error")
			}
			return
		}
		for name, s := range sums {
			if !artifact.ValidFileName(name) || !strings.HasPrefix(name, "./") || strings.Contains(name+"/", "/../") || strings.ContainsRune(name, 0) {
				t.Fatalf("accepted file name %q", name)
			}
			if !artifact.IsSHA256Hex(s) {
				t.Fatalf("accepted checksum %q for %q", s, name)
			}
		}
		openssl := bytes.HasPrefix(out, []byte(opensslMarker+"\n"))
		names := make([]string, 0, len(sums))
		for n := range sums {
			names = append(names, n)
		}
		sort.Strings(names)
		var b bytes.Buffer
		if openssl {
			b.WriteString(opensslMarker + "\n")
		}
		for _, n := range names {
			if openssl {
				if strings.Contains(n, "\n") {
					t.Fatalf("openssl output gave a name with a newline: %q", n)
				}
				b.WriteString(sums[n] + " *" + n + "\n")
			} else {
				b.WriteString(sums[n] + "  " + n + "\x00")
			}
		}
		again, err := ParseChecksums(b.Bytes())
		if err != nil {
			t.Fatalf("re-rendered output does not parse: %v", err)
		}
		if !reflect.DeepEqual(sums, again) {
			t.Fatalf("round trip changed the checksums: %v, %v", sums, again)
		}
	})
}

var _ = Describe("parsing what instances print", func() {
	It("refuses checksum output naming files find would not print", func() {
		sum := strings.Repeat("ab", 32)
		for _, name := range []string{"a.txt", "../etc/passwd", "./a/../../b", "/etc/passwd", "./"} {
			_, err := ParseChecksums([]byte(sum + "  " + name + "\x00"))
			Expect(err).To(MatchError(ContainSubstring("unexpected checksum output")), name)
		}
		_, err := ParseChecksums([]byte(opensslMarker + "\n" + sum + " *./a\n" + sum + " *./a\n"))
		Expect(err).To(MatchError(ContainSubstring("twice")))
	})
})
