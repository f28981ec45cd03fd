package artifact

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets run as plain tests over their seed corpora
// (testdata/fuzz/<Name>) with `go test`, and explore with scripts/fuzz.

// FuzzParseMetadata: whatever parses is safe to use as file names and
// survives Marshal and a re-parse unchanged; Marshal is stable and leaves
// its receiver alone.
func FuzzParseMetadata(f *testing.F) {
	if raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "upstream-bbr-1.9.75", "acc_20261125T032327Z", MetadataFile)); err == nil {
		f.Add(raw)
	}
	f.Add([]byte("backup_activity:\n  start_time: 2026/01/02 03:04:05 UTC\n"))
	f.Add([]byte("instances:\n- name: db\n  index: \"0\"\n  artifacts:\n  - name: pg\n    checksums: {./a: " + strings.Repeat("ab", 32) + "}\n" +
		"backup_activity: {start_time: 2026/01/02 03:04:05 UTC}\nencodings:\n  db-0-pg.tar: {transforms: [zstd, age], recipients: [age1x], size: 10, crc64nvme: " +
		strings.Repeat("cd", 8) + ", plain_size: 20}\n  manifest.yml: {transforms: [age], recipients: [\"ssh-ed25519 SHA256:x\"], size: 1, crc64nvme: " + strings.Repeat("ef", 8) + ", plain_size: 1}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMetadata(raw)
		if err != nil {
			return
		}
		for file, e := range m.Encodings {
			if stored := m.StoredName(file); !validName(stored) || filepath.Base(stored) != stored || !strings.HasPrefix(stored, file+".") {
				t.Fatalf("encoding of %q stores it as %q", file, stored)
			}
			if e.Encrypted() != (len(e.Recipients) > 0) || !isCRC64Hex(e.CRC64NVME) ||
				e.Size < 0 || e.PlainSize < 0 || e.Size > MaxFileSize || e.PlainSize > MaxFileSize {
				t.Fatalf("accepted encoding %+v", e)
			}
		}
		for file, sums := range m.Files() {
			if !validName(file) || filepath.Base(file) != file {
				t.Fatalf("metadata names file %q, which is not a plain name", file)
			}
			for p, sum := range sums {
				if !strings.HasPrefix(p, "./") || strings.Contains("/"+p+"/", "/../") || !IsSHA256Hex(sum) {
					t.Fatalf("metadata accepted path %q sum %q", p, sum)
				}
			}
		}
		before := deepCopy(t, m)
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("valid metadata does not marshal: %v", err)
		}
		if !reflect.DeepEqual(before, m) {
			t.Fatalf("Marshal changed its receiver")
		}
		again, err := ParseMetadata(out)
		if err != nil {
			t.Fatalf("marshalled metadata does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalize(m.Files()), normalize(again.Files())) || m.BackupActivity != again.BackupActivity {
			t.Fatalf("round trip changed the metadata:\n%#v\n%#v", m, again)
		}
		if len(m.Instances) != len(again.Instances) || len(m.CustomArtifacts) != len(again.CustomArtifacts) {
			t.Fatalf("round trip changed the number of instances or custom artifacts")
		}
		out2, err := again.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not stable: %v\n%s\n---\n%s", err, out, out2)
		}
	})
}

func deepCopy(t *testing.T, m Metadata) Metadata {
	c := m
	c.Instances = slices.Clone(m.Instances) // keeps nil and empty apart, as DeepEqual does
	return c
}

// normalize treats a nil and an empty checksum map alike (YAML writes both
// as {}).
func normalize(files map[string]Checksums) map[string]Checksums {
	out := map[string]Checksums{}
	for k, v := range files {
		if len(v) == 0 {
			v = nil
		}
		out[k] = v
	}
	return out
}

// FuzzSumTar feeds raw bytes as a tar stream. Whatever SumTar accepts must
// be safe to extract: checked against an independent reading of the
// stream, then by extracting it for real and resolving every link.
func FuzzSumTar(f *testing.F) {
	dir := filepath.Join("..", "..", "testdata", "upstream-bbr-1.9.75", "acc_20261125T032327Z")
	for _, name := range []string{"api-0-api.tar", "store-1-cache.tar"} {
		if raw, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkSumTar(t, raw)
	})
}

// FuzzTarEntries builds a three-entry tar from fuzzed header fields, so the
// fuzzer explores names, types, link targets and modes rather than header
// checksums.
func FuzzTarEntries(f *testing.F) {
	f.Add("./a", byte(tar.TypeReg), "", int64(0o644), "./b", byte(tar.TypeLink), "./a", "./c", byte(tar.TypeSymlink), "a")
	f.Add("./p/q/r/s", byte(tar.TypeSymlink), "../../..", int64(0o777), "./x", byte(tar.TypeSymlink), "p/q/r/s/..", "./p/q/r/s/f", byte(tar.TypeReg), "")
	f.Add("./d", byte(tar.TypeSymlink), "/etc", int64(0o777), "./d/passwd", byte(tar.TypeReg), "", "../evil", byte(tar.TypeReg), "")
	f.Fuzz(func(t *testing.T, n1 string, t1 byte, l1 string, mode int64, n2 string, t2 byte, l2 string, n3 string, t3 byte, l3 string) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range []struct {
			name string
			typ  byte
			link string
		}{{n1, t1, l1}, {n2, t2, l2}, {n3, t3, l3}} {
			h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode & 0o7777, Format: tar.FormatPAX}
			if e.typ == tar.TypeReg {
				h.Size = int64(len(e.name))
			}
			if err := tw.WriteHeader(h); err != nil {
				return
			}
			if e.typ == tar.TypeReg {
				_, _ = io.WriteString(tw, e.name)
			}
		}
		if tw.Close() != nil {
			return
		}
		checkSumTar(t, buf.Bytes())
	})
}

type tarEntry struct {
	name, link string
	typ        byte
}

func checkSumTar(t *testing.T, raw []byte) {
	sums, err := SumTar(bytes.NewReader(raw))
	if err != nil {
		if sums != nil {
			t.Fatalf("SumTar returned checksums with an error")
		}
		return
	}
	// An independent reading: every entry is of an allowed type with a
	// name that stays inside, and every regular file has its checksum.
	want := Checksums{}
	var entries []tarEntry
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SumTar accepted a stream archive/tar cannot read: %v", err)
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if h.Name == "./" || h.Name == "." {
			rel = "."
		}
		if rel == "" || strings.HasPrefix(h.Name, "/") || strings.Contains("/"+rel+"/", "/../") || strings.ContainsRune(h.Name, 0) || len(h.Name) > MaxEntryName {
			t.Fatalf("SumTar accepted entry %q", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			s := sha256.Sum256(b)
			want["./"+rel] = hex.EncodeToString(s[:])
		case tar.TypeLink:
			s, ok := want["./"+path.Clean(strings.TrimPrefix(h.Linkname, "./"))]
			if !ok {
				t.Fatalf("SumTar accepted hard link %q to %q, not a file before it", h.Name, h.Linkname)
			}
			want["./"+rel] = s
		case tar.TypeSymlink, tar.TypeDir:
		default:
			t.Fatalf("SumTar accepted entry %q of type %q", h.Name, h.Typeflag)
		}
		if h.Mode&0o6000 != 0 && h.Typeflag != tar.TypeDir || h.Mode&0o4000 != 0 {
			t.Fatalf("SumTar accepted setuid/setgid entry %q mode %o", h.Name, h.Mode)
		}
		entries = append(entries, tarEntry{rel, h.Linkname, h.Typeflag})
	}
	if !reflect.DeepEqual(sums, want) {
		t.Fatalf("SumTar checksums %v, want %v", sums, want)
	}
	extract(t, entries)
}

// extract creates the entries under a fresh directory the way tar -x
// would (links created, never followed), failing if any entry would be
// written through anything but a real directory: that is how an entry
// could land outside. Link targets may point anywhere.
func extract(t *testing.T, entries []tarEntry) {
	if len(entries) == 0 {
		return
	}
	base := t.TempDir()
	root := filepath.Join(base, "a", "b", "c", "root")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.name == "." {
			continue
		}
		target := filepath.Join(root, filepath.FromSlash(e.name))
		// Every ancestor below root must be a real directory (or absent).
		for p := filepath.Dir(target); p != root; p = filepath.Dir(p) {
			if info, err := os.Lstat(p); err == nil && !info.IsDir() {
				t.Fatalf("entry %q would be written through %s (%v)", e.name, p, info.Mode())
			}
		}
		if len(target) >= 4096 {
			continue // the scratch root's own prefix pushes it past PATH_MAX
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			t.Fatalf("creating parents of %q: %v", e.name, err)
		}
		var err error
		switch e.typ {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o700)
		case tar.TypeReg:
			err = os.WriteFile(target, nil, 0o600)
		case tar.TypeLink:
			err = os.Link(filepath.Join(root, filepath.FromSlash(e.link)), target)
		case tar.TypeSymlink:
			err = os.Symlink(e.link, target)
		}
		if err != nil {
			t.Fatalf("extracting %q: %v", e.name, err)
		}
	}
}

// FuzzTarAgreesWithGNUTar: whatever SumTar accepts, GNU tar (which
// extracts it on the instance, as root) lists without complaint, entry
// for entry, with the same names, types and link targets as
// archive/tar read them.
func FuzzTarAgreesWithGNUTar(f *testing.F) {
	gnuTar, err := exec.LookPath("tar")
	if err != nil {
		f.Skip("GNU tar is not installed")
	}
	f.Add(ambiguousName(true))
	f.Add(ambiguousName(false))
	dir := filepath.Join("..", "..", "testdata", "upstream-bbr-1.9.75", "acc_20261125T032327Z")
	if raw, err := os.ReadFile(filepath.Join(dir, "store-1-cache.tar")); err == nil {
		f.Add(raw)
	}
	long := "./" + strings.Repeat("d/", 80) + "f"
	f.Add((&rawTar{}).header("./", '5', 0, "", gnuMagic).longName(long).file("x", "data", gnuMagic).header("./l", '2', 0, "./x", gnuMagic).end())
	f.Add((&rawTar{}).pax("path", long, "linkpath", long).header("./y", '2', 0, "", ustarMagic).end())
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = withChecksums(raw)
		if _, err := SumTar(bytes.NewReader(raw)); err != nil {
			return
		}
		want := goListing(t, raw)
		cmd := exec.Command(gnuTar, "-tv", "--quoting-style=escape", "-f", "-")
		cmd.Env = []string{"LC_ALL=C", "TZ=UTC"}
		cmd.Stdin = bytes.NewReader(raw)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("SumTar accepted a stream GNU tar lists with an error: %v: %s", err, stderr.String())
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(got) != len(want) {
			t.Fatalf("GNU tar lists %d entries, archive/tar reads %d:\n%s\nwant %q", len(got), len(want), out, want)
		}
		for i, line := range got {
			// The name starts after the first date and time; an owner
			// or a time GNU tar prints otherwise cannot be compared.
			m := listingLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if m[1] != want[i][:1] || m[2] != want[i][1:] {
				t.Fatalf("entry %d: GNU tar lists %q, archive/tar reads %q", i, line, want[i])
			}
		}
	})
}

// listingLine is a `tar -tv` line: the type letter, then after the date
// and time, the name (and link target).
var listingLine = regexp.MustCompile(`^(.)\S* .*? -?\d+-\d\d-\d\d \d\d:\d\d (.*)$`)

// withChecksums gives every non-zero block a valid header checksum, so
// the fuzzer's mutations of header fields reach both readers instead of
// failing their checksum. Both read the same bytes, data blocks included.
func withChecksums(raw []byte) []byte {
	raw = bytes.Clone(raw)
	for off := 0; off+blockSize <= len(raw); off += blockSize {
		b := raw[off : off+blockSize]
		if bytes.Equal(b, make([]byte, blockSize)) {
			continue
		}
		copy(b[148:156], "        ")
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	}
	return raw
}

// goListing is archive/tar's reading of raw as GNU tar -tv lists it: the
// type letter, then the escaped name and link target.
func goListing(t *testing.T, raw []byte) []string {
	var lines []string
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return lines
		}
		if err != nil {
			t.Fatalf("archive/tar cannot read what SumTar accepted: %v", err)
		}
		line := escapeName(h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			line = "d" + line
		case tar.TypeSymlink:
			line = "l" + line + " -> " + escapeName(h.Linkname)
		case tar.TypeLink:
			line = "h" + line + " link to " + escapeName(h.Linkname)
		default:
			line = "-" + line
		}
		lines = append(lines, line)
	}
}

// escapeName quotes as GNU tar's --quoting-style=escape does in the C
// locale: C escapes for control characters and backslash, octal for the
// other bytes that are not printable ASCII.
func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		case strings.IndexByte("\a\b\f\n\r\t\v", c) >= 0:
			b.WriteByte('\\')
			b.WriteByte("abfnrtv"[strings.IndexByte("\a\b\f\n\r\t\v", c)])
		default:
			fmt.Fprintf(&b, `\%03o`, c)
		}
	}
	return b.String()
}
