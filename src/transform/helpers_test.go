package transform_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
	"github.com/bbr-release/bbr/src/transform"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// key is an age identity and its recipient, as age-keygen makes them.
type key struct {
	id  *age.X25519Identity
	rec transform.Recipient
}

func newKey() key {
	id, err := age.GenerateX25519Identity()
	Expect(err).NotTo(HaveOccurred())
	rs, err := transform.ParseRecipients([]string{id.Recipient().String()})
	Expect(err).NotTo(HaveOccurred())
	return key{id, rs[0]}
}

// sshKey is an ed25519 SSH key pair: the authorized_keys line and the
// OpenSSH private key file.
func sshKey() (public string, private []byte) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	sshPub, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	return string(ssh.MarshalAuthorizedKey(sshPub)), pem.EncodeToMemory(block)
}

// backup writes one backup of "cf" with the tars and a manifest through
// dest, and returns its name.
func backup(dest artifact.Destination, tars map[string][]byte) string {
	name := artifact.BackupName("cf", t0)
	w, err := dest.Create(context.Background(), name, t0)
	Expect(err).NotTo(HaveOccurred())
	Expect(w.SaveManifest("name: cf\npassword: hunter2\n")).To(Succeed())
	i := 0
	for _, file := range sortedKeys(tars) {
		sums, _, err := w.WriteTar(file, bytes.NewReader(tars[file]))
		Expect(err).NotTo(HaveOccurred())
		Expect(w.AddInstanceArtifact("db", i, "pg", sums)).To(Succeed())
		i++
	}
	Expect(w.Finish(t0.Add(time.Minute), nil)).To(Succeed())
	return name
}

func sortedKeys(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }

func tarOf(files map[string][]byte) []byte { return destinationtest.MakeTar(files) }

// encode is what the zstd and age CLIs would write for plain: the
// test's own encoding, independent of the package's.
func encode(plain []byte, compress bool, to ...age.Recipient) []byte {
	out := plain
	if compress {
		var buf bytes.Buffer
		zw, err := zstd.NewWriter(&buf)
		Expect(err).NotTo(HaveOccurred())
		_, err = zw.Write(out)
		Expect(err).NotTo(HaveOccurred())
		Expect(zw.Close()).To(Succeed())
		out = buf.Bytes()
	}
	if len(to) > 0 {
		var buf bytes.Buffer
		aw, err := age.Encrypt(&buf, to...)
		Expect(err).NotTo(HaveOccurred())
		_, err = aw.Write(out)
		Expect(err).NotTo(HaveOccurred())
		Expect(aw.Close()).To(Succeed())
		out = buf.Bytes()
	}
	return out
}

func read(src artifact.Source, file string) ([]byte, error) {
	r, err := src.Open(context.Background(), file)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func writeFile(path string, content []byte) {
	Expect(os.WriteFile(path, content, 0o600)).To(Succeed())
}

func stored(dir, backup, file string) string { return filepath.Join(dir, backup, file) }

func crcHex(b []byte) string {
	h := artifact.NewStoredHash()
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}
