package errand_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
	"github.com/bbr-release/bbr/src/errand"
)

var _ = Describe("the errands with compression and encryption", func() {
	var (
		root  string
		out   bytes.Buffer
		clock time.Time
		id    *age.X25519Identity
		cfg   errand.Config
		tar   = destinationtest.MakeTar(map[string][]byte{"./dump.sql": []byte("INSERT INTO secrets VALUES ('hunter2');\n")})
	)
	BeforeEach(func() {
		root = GinkgoT().TempDir()
		out.Reset()
		clock = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
		var err error
		id, err = age.GenerateX25519Identity()
		Expect(err).NotTo(HaveOccurred())
		cfg, err = errand.ParseConfig([]byte(validConfig + "artifact_directory: " + root + `
compression: {enabled: true, level: 9}
encryption: {recipients: ["` + id.Recipient().String() + `"]}
validate_after_backup: always
`))
		Expect(err).NotTo(HaveOccurred())
	})
	// backup writes one tar through the destination the errand gives.
	backup := func(_ context.Context, dep string, dest artifact.Destination) (string, error) {
		clock = clock.Add(time.Minute)
		w, err := dest.Create(context.Background(), artifact.BackupName(dep, clock), clock)
		Expect(err).NotTo(HaveOccurred())
		sums, _, err := w.WriteTar("db-0-pg.tar", bytes.NewReader(tar))
		Expect(err).NotTo(HaveOccurred())
		Expect(w.AddInstanceArtifact("db", 0, "pg", sums)).To(Succeed())
		Expect(w.Finish(clock, nil)).To(Succeed())
		return w.Location(), nil
	}

	It("backs up encrypted and compressed, validates the stored bytes without a key, and restores only with the identity", func() {
		r := errand.Runner{Config: cfg, Backup: backup, Out: &out, Now: func() time.Time { return clock }}
		Expect(r.RunBackup(context.Background())).To(Succeed())
		stored := filepath.Join(root, "cf", "cf_20261202T080100Z", "db-0-pg.tar.zst.age")
		raw, err := os.ReadFile(stored)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(ContainSubstring("hunter2"))
		Expect(out.String()).To(ContainSubstring("its stored bytes match (encrypted: the contents are checked with the identity"))

		var restored []string
		restore := errand.Runner{Config: cfg, Out: &out, Now: time.Now, Restore: func(ctx context.Context, _ string, src artifact.Source) error {
			Expect(artifact.Verify(ctx, src)).To(Succeed(), "the plain tar, decrypted")
			restored = append(restored, src.Location())
			return nil
		}}
		restore.Config.Restore.Deployment = "cf"
		Expect(restore.RunRestore(context.Background())).To(MatchError(ContainSubstring("set encryption.identity on the restore job")))
		restore.Config.Encryption.Identity = id.String()
		Expect(restore.RunRestore(context.Background())).To(Succeed())
		Expect(restored).To(HaveLen(1))

		other, err := age.GenerateX25519Identity()
		Expect(err).NotTo(HaveOccurred())
		restore.Config.Encryption.Identity = other.String()
		Expect(restore.RunRestore(context.Background())).To(MatchError(ContainSubstring("none of the identities given decrypts it: it was encrypted to " + id.Recipient().String())))
		Expect(restored).To(HaveLen(1), "refused before the restore began")
	})

	It("validates the newest good backup of every deployment in validate mode, and names the bad one", func() {
		r := errand.Runner{Config: cfg, Backup: backup, Out: &out, Now: func() time.Time { return clock }}
		Expect(r.RunBackup(context.Background())).To(Succeed())
		redis := filepath.Join(root, "redis", artifact.BackupName("redis", clock), "db-0-pg.tar.zst.age")
		raw, err := os.ReadFile(redis)
		Expect(err).NotTo(HaveOccurred())
		raw[len(raw)/2] ^= 1
		Expect(os.WriteFile(redis, raw, 0o600)).To(Succeed())

		out.Reset()
		v := errand.Runner{Config: cfg, Out: &out, Now: time.Now}
		v.Config.Mode = "validate"
		v.Config.Encryption.Identity = id.String()
		Expect(v.Config.CheckRestore()).To(Succeed(), "validating needs no restore.deployment")
		Expect(v.RunRestore(context.Background())).To(MatchError("1 of 2 deployments have no good newest backup: redis"))
		lines := strings.Split(out.String(), "\n")
		Expect(lines).To(ContainElement(MatchRegexp(`^cf\s+cf_20261202T080100Z\s+.*zstd\+age\s+GOOD$`)))
		Expect(lines).To(ContainElement(MatchRegexp(`^redis\s+redis_20261202T080200Z\s+.*BAD: db-0-pg.tar: db-0-pg.tar.zst.age does not match the size and CRC-64`)))
	})

	It("refuses keys it cannot use, without repeating a private one", func() {
		_, err := errand.ParseConfig([]byte(validConfig + "encryption: {recipients: [\"" + id.String() + "\"]}\n"))
		Expect(err).To(MatchError(ContainSubstring("encryption.recipients: a recipient is a private key")))
		Expect(err.Error()).NotTo(ContainSubstring(id.String()))
		_, err = errand.ParseConfig([]byte(validConfig + "encryption: {identity: \"AGE-SECRET-KEY-1NOPE\"}\n"))
		Expect(err).To(MatchError(ContainSubstring("encryption.identity: not an age identity file")))
		Expect(err.Error()).NotTo(ContainSubstring("NOPE"))
		_, err = errand.ParseConfig([]byte(validConfig + "compression: {enabled: true, level: 30}\nmode: verify\n"))
		Expect(err).To(MatchError(And(ContainSubstring("compression.level"), ContainSubstring("mode must be restore or validate"))))
	})
})
