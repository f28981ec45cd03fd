package artifact

import (
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"sort"
	"strings"

	"github.com/minio/crc64nvme"
)

// Transform names, as the metadata records them, in the order they are
// applied when writing (and undone in reverse when reading).
const (
	Zstd = "zstd"
	Age  = "age"
)

// transformSuffix is the file name suffix each transform adds, as the
// zstd and age CLIs name their output.
var transformSuffix = map[string]string{Zstd: ".zst", Age: ".age"}

// Encoding says how a file of a backup is stored when it is not the plain
// tar (or manifest) upstream writes: the transforms applied, for age the
// recipients it was encrypted to, and the stored bytes' size and CRC-64,
// so the stored file can be checked without the private key. The plain
// file's checksums stay where upstream has them.
//
// The stored bytes' digest is CRC-64/NVME (the full-object checksum S3
// also offers), not sha256: it finds damage (a truncated upload, a
// flipped bit), as a sha256 would, at 0.05 s per GiB against 0.6 s.
// Neither could find forgery: whoever can rewrite a stored file can
// rewrite the metadata beside it, and age's public recipients let anyone
// encrypt a replacement. The plain contents' sha256 checksums and age's
// authenticated chunks are checked whenever the file is decrypted.
type Encoding struct {
	Transforms []string `yaml:"transforms"`
	// Recipients are the age recipients (age1...) or the SSH keys'
	// fingerprints ("ssh-ed25519 SHA256:...") the file was encrypted to.
	Recipients []string `yaml:"recipients,omitempty"`
	// Size and CRC64NVME (16 hex digits) are of the stored bytes;
	// PlainSize of the plain file.
	Size      int64  `yaml:"size"`
	CRC64NVME string `yaml:"crc64nvme"`
	PlainSize int64  `yaml:"plain_size"`
}

// MaxFileSize bounds every size the metadata records (1 PiB): far above
// any file a backup holds, and far enough below the int64 limit that no
// sum or +1 computed from it can overflow. Metadata is input: a damaged
// or hostile file must be refused, not computed with.
const MaxFileSize = 1 << 50

// StoredName is the name file is stored under: file, then a suffix per
// transform (db-0-pg.tar.zst.age).
func (e Encoding) StoredName(file string) string {
	for _, t := range e.Transforms {
		file += transformSuffix[t]
	}
	return file
}

// NewStoredHash is the digest of stored bytes the metadata records.
func NewStoredHash() hash.Hash { return crc64nvme.New() }

// check compares the size and CRC-64 of stored bytes read as name with
// what the metadata records.
func (e Encoding) check(name string, n int64, h hash.Hash) error {
	if n != e.Size || hex.EncodeToString(h.Sum(nil)) != e.CRC64NVME {
		return fmt.Errorf("backup is corrupted: %s does not match the size and CRC-64 its metadata records (%d bytes read, %d recorded)", name, n, e.Size)
	}
	return nil
}

func isCRC64Hex(s string) bool {
	_, err := hex.DecodeString(s)
	return len(s) == 16 && err == nil && strings.ToLower(s) == s
}

// Encrypted says whether reading the file needs an identity.
func (e Encoding) Encrypted() bool { return slices.Contains(e.Transforms, Age) }

// validTransforms are the sequences bbr writes: compression before
// encryption (ciphertext does not compress).
var validTransforms = [][]string{{Zstd}, {Age}, {Zstd, Age}}

func (e Encoding) validate(file string) error {
	for _, t := range e.Transforms {
		if _, ok := transformSuffix[t]; !ok {
			return fmt.Errorf("artifact metadata says %s was stored with the unknown transform %q (this bbr knows %s and %s): it was written by another tool or a newer bbr", file, t, Zstd, Age)
		}
	}
	if !slices.ContainsFunc(validTransforms, func(v []string) bool { return slices.Equal(v, e.Transforms) }) {
		return fmt.Errorf("artifact metadata says %s was stored with transforms %v: bbr writes [zstd], [age] or [zstd age]", file, e.Transforms)
	}
	if e.Encrypted() != (len(e.Recipients) > 0) {
		return fmt.Errorf("artifact metadata of %s names recipients %v with transforms %v: age needs recipients, and only age has them", file, e.Recipients, e.Transforms)
	}
	for _, r := range e.Recipients {
		// A post-quantum recipient is some 2,000 characters.
		if r == "" || len(r) > 4096 || strings.IndexFunc(r, func(c rune) bool { return c < ' ' || c > '~' }) >= 0 {
			return fmt.Errorf("artifact metadata of %s has an invalid recipient %q", file, r)
		}
	}
	if !isCRC64Hex(e.CRC64NVME) || e.Size < 0 || e.PlainSize < 0 {
		return fmt.Errorf("artifact metadata of %s has an invalid stored size %d, plain size %d or CRC-64 %q", file, e.Size, e.PlainSize, e.CRC64NVME)
	}
	if e.Size > MaxFileSize || e.PlainSize > MaxFileSize {
		return fmt.Errorf("artifact metadata of %s records a stored size %d or plain size %d larger than bbr can store (%d bytes): the metadata is damaged", file, e.Size, e.PlainSize, int64(MaxFileSize))
	}
	return nil
}

// validateEncodings checks that every encoding is of a file the metadata
// names (or the manifest) and is itself valid.
func (m Metadata) validateEncodings() error {
	named := m.Files()
	var total int64 // stays far from overflowing: each term is at most MaxFileSize
	for file, e := range m.Encodings {
		if _, ok := named[file]; !ok && file != ManifestFile {
			return fmt.Errorf("artifact metadata has an encoding for %q, which it does not name", file)
		}
		if err := e.validate(file); err != nil {
			return err
		}
		if total += e.Size + e.PlainSize; total > maxBackupSize {
			return fmt.Errorf("artifact metadata records more than %d bytes in all: the metadata is damaged", int64(maxBackupSize))
		}
	}
	return nil
}

// maxBackupSize bounds the sizes the metadata records, summed: the sums
// validate and restore compute stay within int64.
const maxBackupSize = 64 * MaxFileSize

// StoredName is the name a file of the backup is stored under.
func (m Metadata) StoredName(file string) string {
	if e, ok := m.Encodings[file]; ok {
		return e.StoredName(file)
	}
	return file
}

// Transforms summarises what the backup's files were stored with, e.g.
// "zstd+age", or "none" for an upstream-format backup.
func (m Metadata) Transforms() string {
	seen := map[string]bool{}
	for _, e := range m.Encodings {
		for _, t := range e.Transforms {
			seen[t] = true
		}
	}
	var ts []string
	for _, t := range []string{Zstd, Age} {
		if seen[t] {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return "none"
	}
	return strings.Join(ts, "+")
}

// Recipients lists every recipient any file was encrypted to, sorted.
func (m Metadata) Recipients() []string {
	seen := map[string]bool{}
	for _, e := range m.Encodings {
		for _, r := range e.Recipients {
			seen[r] = true
		}
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
