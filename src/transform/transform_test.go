package transform_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"filippo.io/age"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
	"github.com/bbr-release/bbr/src/transform"
)

var _ = Describe("a destination storing zstd + age", func() {
	k := newKey()
	opts := transform.Options{Compress: true, Recipients: []transform.Recipient{k.rec}, Identities: []age.Identity{k.id}}

	destinationtest.Run(destinationtest.Harness{
		New:     func() artifact.Destination { return transform.Wrap(artifact.Local{Dir: GinkgoT().TempDir()}, opts) },
		Encodes: true,
		Corrupt: func(dest artifact.Destination, backup, file string, content []byte) {
			dir := dest.(*transform.Destination).Destination.(artifact.Local).Dir
			if file != artifact.MetadataFile {
				content, file = encode(content, true, k.id.Recipient()), file+".zst.age"
			}
			writeFile(stored(dir, backup, file), content)
		},
		Crash: func(dest artifact.Destination, backup string) {
			dir := filepath.Join(dest.(*transform.Destination).Destination.(artifact.Local).Dir, backup+artifact.InProgressSuffix)
			Expect(os.Mkdir(dir, 0o700)).To(Succeed())
			writeFile(filepath.Join(dir, "db-0-pg.tar.zst.age"), []byte("partial"))
		},
	})
})

var _ = Describe("transformed backups", func() {
	var (
		ctx   = context.Background()
		dir   string
		k     key
		tars  map[string][]byte
		plain artifact.Destination
	)
	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		k = newKey()
		tars = map[string][]byte{
			"db-0-pg.tar": tarOf(map[string][]byte{"./dump.sql": bytes.Repeat([]byte("INSERT INTO secret VALUES (42);\n"), 4096)}),
			"db-1-pg.tar": tarOf(map[string][]byte{"./dump.rdb": []byte("REDIS0011 secret-value")}),
		}
		plain = artifact.Local{Dir: GinkgoT().TempDir()}
	})
	encrypting := func(compress bool) artifact.Destination {
		return transform.Wrap(artifact.Local{Dir: dir}, transform.Options{Compress: compress, Recipients: []transform.Recipient{k.rec}, Identities: []age.Identity{k.id}})
	}

	It("stores no plaintext, records what it applied, and keeps upstream's checksums", func() {
		name := backup(encrypting(true), tars)
		plainName := backup(plain, tars)
		entries, err := os.ReadDir(filepath.Join(dir, name))
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
			raw, err := os.ReadFile(filepath.Join(dir, name, e.Name()))
			Expect(err).NotTo(HaveOccurred())
			Expect(string(raw)).NotTo(Or(ContainSubstring("secret"), ContainSubstring("hunter2")), e.Name())
			info, _ := e.Info()
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))
		}
		Expect(names).To(ConsistOf("db-0-pg.tar.zst.age", "db-1-pg.tar.zst.age", "manifest.yml.zst.age", "metadata"))

		src, err := artifact.Open(filepath.Join(dir, name))
		Expect(err).NotTo(HaveOccurred())
		ref, err := artifact.Open(filepath.Join(plain.(artifact.Local).Dir, plainName))
		Expect(err).NotTo(HaveOccurred())
		meta := src.Metadata()
		Expect(meta.Files()).To(Equal(ref.Metadata().Files()), "the checksums of the plain tars, as upstream's")
		e := meta.Encodings["db-0-pg.tar"]
		Expect(e.Transforms).To(Equal([]string{"zstd", "age"}))
		Expect(e.Recipients).To(Equal([]string{k.id.Recipient().String()}))
		Expect(e.PlainSize).To(BeEquivalentTo(len(tars["db-0-pg.tar"])))
		Expect(e.Size).To(BeNumerically("<", e.PlainSize/10), "the SQL dump compresses")
		Expect(meta.Encodings).To(HaveKey(artifact.ManifestFile))
		Expect(meta.Transforms()).To(Equal("zstd+age"))
	})

	It("writes what the age and zstd CLIs turn back into the tar upstream would have written", func() {
		// Some MiB, many zstd blocks and windows, repeats further back
		// than the window, and incompressible stretches.
		noise := make([]byte, 1<<20)
		_, _ = rand.Read(noise)
		text := bytes.Repeat([]byte("COPY public.accounts (id, owner) FROM stdin;\n"), 30_000)
		tars["db-2-pg.tar"] = tarOf(map[string][]byte{"./noise": noise, "./again": noise, "./dump.sql": text})
		name := backup(encrypting(true), tars)
		keyFile := filepath.Join(GinkgoT().TempDir(), "key.txt")
		writeFile(keyFile, []byte(k.id.String()+"\n"))
		for file, want := range tars {
			cmd := exec.Command("sh", "-c", `age -d -i "$1" "$2" | zstd -dc`, "sh", keyFile, stored(dir, name, file+".zst.age"))
			out, err := cmd.Output()
			Expect(err).NotTo(HaveOccurred(), "age and zstd are installed by scripts/test")
			Expect(out).To(Equal(want), file)
		}
		out, err := exec.Command("sh", "-c", `age -d -i "$1" "$2" | zstd -dc`, "sh", keyFile, stored(dir, name, "manifest.yml.zst.age")).Output()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("name: cf\npassword: hunter2\n"))
	})

	It("reads back files the age CLI encrypted to an SSH key, and names the key by its fingerprint", func() {
		pub, priv := sshKey()
		rs, err := transform.ParseRecipients([]string{pub})
		Expect(err).NotTo(HaveOccurred())
		Expect(rs[0].Name).To(MatchRegexp(`^ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}$`))
		ids, err := transform.ParseIdentity(priv)
		Expect(err).NotTo(HaveOccurred())
		dest := transform.Wrap(artifact.Local{Dir: dir}, transform.Options{Recipients: rs, Identities: ids})
		name := backup(dest, tars)
		src, err := dest.Open(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(ctx, src)).To(Succeed())
		Expect(src.Metadata().Encodings["db-0-pg.tar"].Transforms).To(Equal([]string{"age"}))

		keyFile := filepath.Join(GinkgoT().TempDir(), "id_ed25519")
		writeFile(keyFile, priv)
		out, err := exec.Command("age", "-d", "-i", keyFile, stored(dir, name, "db-1-pg.tar.age")).Output()
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal(tars["db-1-pg.tar"]))
	})

	It("compresses without encrypting, readable with no key at all", func() {
		dest := transform.Wrap(artifact.Local{Dir: dir}, transform.Options{Compress: true, Level: 19})
		name := backup(dest, tars)
		src, err := dest.Open(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(transform.CheckIdentities(ctx, src)).To(Succeed())
		Expect(read(src, "db-0-pg.tar")).To(Equal(tars["db-0-pg.tar"]))
		Expect(read(src, artifact.ManifestFile)).To(ContainSubstring("hunter2"))
		out, err := exec.Command("zstd", "-dc", stored(dir, name, "db-0-pg.tar.zst")).Output()
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal(tars["db-0-pg.tar"]))
	})

	It("exports a plain backup in upstream's format, and copies the stored bytes without a key", func() {
		name := backup(encrypting(true), tars)
		src, err := encrypting(true).Open(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		exported := GinkgoT().TempDir()
		location, err := artifact.Export(ctx, src, name, artifact.Local{Dir: exported})
		Expect(err).NotTo(HaveOccurred())
		plainName := backup(plain, tars)
		for file := range tars {
			got, err := os.ReadFile(filepath.Join(location, file))
			Expect(err).NotTo(HaveOccurred())
			want, err := os.ReadFile(filepath.Join(plain.(artifact.Local).Dir, plainName, file))
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(want))
		}
		manifest, err := os.ReadFile(filepath.Join(location, artifact.ManifestFile))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(manifest)).To(ContainSubstring("hunter2"))
		out, err := artifact.Open(location)
		Expect(err).NotTo(HaveOccurred())
		Expect(out.Metadata().Encodings).To(BeEmpty())
		Expect(artifact.Verify(ctx, out)).To(Succeed())

		raw, err := artifact.Local{Dir: dir}.Open(ctx, name) // no identity anywhere
		Expect(err).NotTo(HaveOccurred())
		copied := GinkgoT().TempDir()
		location, err = artifact.Copy(ctx, raw, name, artifact.Local{Dir: copied})
		Expect(err).NotTo(HaveOccurred())
		for _, f := range []string{"db-0-pg.tar.zst.age", "manifest.yml.zst.age"} {
			Expect(os.ReadFile(filepath.Join(location, f))).To(Equal(must(os.ReadFile(stored(dir, name, f)))))
		}
		back, err := encrypting(true).Open(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(ctx, back)).To(Succeed())
	})

	It("refuses to copy a stored file that does not match its recorded CRC-64", func() {
		name := backup(encrypting(false), tars)
		f := stored(dir, name, "db-1-pg.tar.age")
		raw := must(os.ReadFile(f))
		raw[len(raw)-1] ^= 1
		writeFile(f, raw)
		src, err := artifact.Local{Dir: dir}.Open(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		location, err := artifact.Copy(ctx, src, name, artifact.Local{Dir: GinkgoT().TempDir()})
		Expect(err).To(MatchError(ContainSubstring("db-1-pg.tar.age does not match the size and CRC-64 its metadata records")))
		Expect(location).To(HaveSuffix(artifact.FailedSuffix))
	})

	Describe("validate", func() {
		It("checks every file's contents with the identity, and only the stored bytes without it", func() {
			name := backup(encrypting(true), tars)
			src, err := encrypting(true).Open(ctx, name)
			Expect(err).NotTo(HaveOccurred())
			v, err := artifact.Validate(ctx, src, artifact.ValidateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(v.Bad()).To(BeEmpty())
			Expect(v.ContentsChecked()).To(BeTrue())
			Expect(v.Transforms).To(Equal("zstd+age"))
			Expect(v.PlainSize).To(BeNumerically(">", v.Size))
			Expect(v.Files[0]).To(And(HaveField("StoredAs", "db-0-pg.tar.zst.age"), HaveField("Transforms", []string{"zstd", "age"})))

			noKey := transform.Decode(must(artifact.Local{Dir: dir}.Open(ctx, name)), nil)
			err = transform.CheckIdentities(ctx, noKey)
			Expect(err).To(MatchError(transform.ErrNeedsIdentity))
			Expect(err).To(MatchError(ContainSubstring(k.id.Recipient().String())))
			v, err = artifact.Validate(ctx, noKey, artifact.ValidateOptions{StoredOnly: true})
			Expect(err).NotTo(HaveOccurred())
			Expect(v.Bad()).To(BeEmpty())
			Expect(v.ContentsChecked()).To(BeFalse())
		})

		// Each case damages the backup, and validate, restore's Verify and
		// the stored-bytes check each name the file.
		DescribeTable("names the bad file and why",
			func(damage func(name string), storedCatches bool, want string) {
				name := backup(encrypting(true), tars)
				damage(name)
				src, err := encrypting(true).Open(ctx, name)
				if err != nil { // the metadata itself is refused
					Expect(err).To(MatchError(ContainSubstring(want)))
					return
				}
				v, err := artifact.Validate(ctx, src, artifact.ValidateOptions{})
				Expect(err).NotTo(HaveOccurred())
				Expect(v.Bad()).To(ContainElement(And(HavePrefix("db-0-pg.tar: "), ContainSubstring(want))))
				Expect(artifact.Verify(ctx, src)).To(MatchError(ContainSubstring("db-0-pg.tar")))
				v, err = artifact.Validate(ctx, src, artifact.ValidateOptions{StoredOnly: true})
				Expect(err).NotTo(HaveOccurred())
				Expect(v.OK()).To(Equal(!storedCatches))
				Expect(os.ReadDir(filepath.Join(dir, name))).To(HaveLen(4), "nothing is deleted")
			},
			Entry("truncated", func(name string) {
				f := stored(dir, name, "db-0-pg.tar.zst.age")
				raw := must(os.ReadFile(f))
				writeFile(f, raw[:len(raw)-20])
			}, true, "does not match the size and CRC-64"),
			Entry("a bit flipped, the metadata's CRC-64 updated to match", func(name string) {
				f := stored(dir, name, "db-0-pg.tar.zst.age")
				raw := must(os.ReadFile(f))
				raw[len(raw)/2] ^= 0x10
				replaceStored(dir, name, raw)
			}, false, "db-0-pg.tar.zst.age: decrypting"),
			Entry("encrypted to someone else", func(name string) {
				replaceStored(dir, name, encode(tars["db-0-pg.tar"], true, newKey().id.Recipient()))
			}, false, "none of the identities given decrypts it"),
			Entry("claims zstd for a file that is not", func(name string) {
				replaceStored(dir, name, encode(tars["db-0-pg.tar"], false, k.id.Recipient()))
			}, false, "decompressing (is it zstd, as the metadata says?)"),
			Entry("claims age for a file that is not", func(name string) {
				replaceStored(dir, name, encode(tars["db-0-pg.tar"], true))
			}, false, "not a readable age file (is it encrypted, as the metadata says?)"),
			Entry("a plain size the file does not decode to", func(name string) {
				rewriteEncoding(dir, name, func(e *artifact.Encoding) { e.PlainSize++ })
			}, false, "db-0-pg.tar.zst.age decodes to 1 bytes fewer than its metadata records"),
			Entry("a plain size no file can have (it overflowed the decoder's bound and panicked)", func(name string) {
				rewriteEncoding(dir, name, func(e *artifact.Encoding) { e.PlainSize = math.MaxInt64 })
			}, true, "plain size 9223372036854775807 larger than bbr can store"),
			Entry("an unknown transform", func(name string) {
				rewriteEncoding(dir, name, func(e *artifact.Encoding) { e.Transforms = []string{"lz4", "age"} })
			}, true, `db-0-pg.tar was stored with the unknown transform "lz4"`),
		)
	})

	It("refuses wrong keys clearly, without echoing a secret", func() {
		_, err := transform.ParseRecipients([]string{k.id.String()})
		Expect(err).To(MatchError(ContainSubstring("a recipient is a private key")))
		Expect(err.Error()).NotTo(ContainSubstring(k.id.String()))
		_, err = transform.ParseRecipients([]string{"age1nope"})
		Expect(err).To(MatchError(ContainSubstring("a recipient of 8 characters is not an age public key")))
		_, err = transform.ParseRecipients([]string{strings.ToLower(k.id.String())})
		Expect(err).To(MatchError(ContainSubstring("a recipient is a private key")))
		_, err = transform.ParseRecipients([]string{"# only a comment\n"})
		Expect(err).To(MatchError(ContainSubstring("no recipients given")))
		_, err = transform.ParseIdentity([]byte(k.id.Recipient().String() + "\n"))
		Expect(err).To(MatchError(ContainSubstring("not an age identity file")))
		Expect(transform.Options{Compress: true, Level: 22}.Validate()).To(MatchError(ContainSubstring("not between 1 and 19")))

		name := backup(encrypting(false), tars)
		wrong := newKey()
		src := transform.Decode(must(artifact.Local{Dir: dir}.Open(ctx, name)), []age.Identity{wrong.id})
		err = transform.CheckIdentities(ctx, src)
		Expect(err).To(MatchError(ContainSubstring("db-0-pg.tar.age: none of the identities given decrypts it: it was encrypted to " + k.id.Recipient().String())))
	})
})

// replaceStored stores raw as db-0-pg.tar.zst.age and records its size
// and CRC-64, so that only what raw is can fail a check.
func replaceStored(dir, name string, raw []byte) {
	writeFile(stored(dir, name, "db-0-pg.tar.zst.age"), raw)
	rewriteEncoding(dir, name, func(e *artifact.Encoding) { e.CRC64NVME, e.Size = crcHex(raw), int64(len(raw)) })
}

// rewriteEncoding changes db-0-pg.tar's encoding in the metadata.
func rewriteEncoding(dir, name string, change func(*artifact.Encoding)) {
	path := filepath.Join(dir, name, artifact.MetadataFile)
	m, err := artifact.ParseMetadata(must(os.ReadFile(path)))
	Expect(err).NotTo(HaveOccurred())
	e := m.Encodings["db-0-pg.tar"]
	change(&e)
	m.Encodings["db-0-pg.tar"] = e
	raw, err := m.Marshal()
	Expect(err).NotTo(HaveOccurred())
	writeFile(path, raw)
}

func must[T any](v T, err error) T {
	Expect(err).NotTo(HaveOccurred())
	return v
}
