package orchestrator

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	yaml "go.yaml.in/yaml/v2"

	"github.com/bbr-release/bbr/src/lockorder"
)

// The fuzz targets run as plain tests over their seed corpora
// (testdata/fuzz/<Name>) with `go test`, and explore with scripts/fuzz.

// FuzzParseJobMetadata: a metadata script's output either fails to parse
// or gives lock-order references with both names, printable; it survives a
// YAML round trip; and the lock ordering built from it never panics and
// places every job exactly once, or reports a cycle.
func FuzzParseJobMetadata(f *testing.F) {
	f.Add([]byte("---\nbackup_should_be_locked_before:\n- job_name: store\n  release: acc-release\nrestore_should_be_locked_before:\n- job_name: store\n  release: acc-release\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		m, err := ParseJobMetadata(out)
		if err != nil {
			return
		}
		if len(out) > MaxJobMetadata {
			t.Fatalf("accepted %d bytes of metadata", len(out))
		}
		for _, l := range append(append([]LockBefore{}, m.BackupShouldBeLockedBefore...), m.RestoreShouldBeLockedBefore...) {
			if l.JobName == "" || l.Release == "" || !utf8.ValidString(l.JobName+l.Release) || strings.ContainsAny(l.JobName+l.Release, "\n\r\x1b\x00") {
				t.Fatalf("accepted lock-before reference %q", l)
			}
		}
		raw, err := yaml.Marshal(m)
		if err != nil {
			t.Fatalf("parsed metadata does not marshal: %v", err)
		}
		again, err := ParseJobMetadata(raw)
		if err != nil {
			t.Fatalf("re-parsing marshalled metadata: %v\n%s", err, raw)
		}
		if !reflect.DeepEqual(normalizeJobMetadata(m), normalizeJobMetadata(again)) {
			t.Fatalf("round trip changed the metadata:\n%#v\n%#v", m, again)
		}

		// The job declaring the order, and the jobs it names, on one
		// deployment: as many as there are references, plus one.
		for _, forRestore := range []bool{false, true} {
			before := m.BackupShouldBeLockedBefore
			if forRestore {
				before = m.RestoreShouldBeLockedBefore
			}
			jobs := []*Job{{Name: "declaring", Release: "rel", Metadata: m}}
			for i, l := range before {
				if i >= 16 {
					break
				}
				jobs = append(jobs, &Job{Name: l.JobName, Release: l.Release, Metadata: m})
			}
			layers, err := lockLayers(jobs, forRestore)
			if errors.Is(err, lockorder.ErrCyclic) {
				continue
			}
			if err != nil {
				t.Fatalf("lock order: %v", err)
			}
			seen := map[*Job]int{}
			for _, l := range layers {
				for _, j := range l {
					seen[j]++
				}
			}
			for _, j := range jobs {
				if seen[j] != 1 {
					t.Fatalf("job %q placed %d times in %v", j.Name, seen[j], layers)
				}
			}
		}
	})
}

func normalizeJobMetadata(m JobMetadata) JobMetadata {
	if len(m.BackupShouldBeLockedBefore) == 0 {
		m.BackupShouldBeLockedBefore = nil
	}
	if len(m.RestoreShouldBeLockedBefore) == 0 {
		m.RestoreShouldBeLockedBefore = nil
	}
	return m
}

var _ = Describe("parsing what instances print", func() {
	It("refuses job metadata with control characters in lock-order names, or too big", func() {
		_, err := ParseJobMetadata([]byte("backup_should_be_locked_before:\n- job_name: \"a\\nINFO - all good\"\n  release: r\n"))
		Expect(err).To(MatchError(ContainSubstring("control characters")))
		_, err = ParseJobMetadata(append([]byte("# "), bytes.Repeat([]byte("x"), MaxJobMetadata)...))
		Expect(err).To(MatchError(ContainSubstring("more than the")))
		m, err := ParseJobMetadata([]byte("restore_should_be_locked_before:\n- {job_name: store, release: acc-release}\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.RestoreShouldBeLockedBefore).To(Equal([]LockBefore{{JobName: "store", Release: "acc-release"}}))
	})

})
