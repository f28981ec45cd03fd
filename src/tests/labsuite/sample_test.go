package labsuite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/artifact"
)

var _ = Describe("the sample deployment", Ordered, func() {
	var workDir, artifactPath string

	BeforeAll(func() {
		labUp("basic")
		workDir = GinkgoT().TempDir()
	})

	AfterEach(func() {
		Expect(labUsers()).To(BeEmpty(), "every SSH user bbr asked for is removed")
		Expect(stagingLeft("sample")).To(BeEmpty(), "no /var/vcap/store/bbr-backup is left")
	})

	It("is listed by the real bosh CLI", func() {
		if boshBin == "" {
			Skip("BBR_TEST_BIN is not set: scripts/test builds the bosh CLI there")
		}
		r := runIn("", nil, boshBin, "-e", "https://"+lab.Director.Address, "--ca-cert", lab.Director.CACertPath,
			"--client", lab.Director.Client, "--client-secret", lab.Director.ClientSecret, "-d", "sample", "vms").expectSuccess()
		for _, i := range instanceSlugs() {
			Expect(r.out).To(ContainSubstring(i))
		}
	})

	It("passes pre-backup-check", func() {
		r := bbr(workDir, "sample", "deployment", "pre-backup-check").expectSuccess()
		Expect(r.out).To(ContainSubstring("Deployment 'sample' can be backed up."))
	})

	It("backs up live Redis and PostgreSQL data with the API locked around it", func() {
		for i := 0; i < 2; i++ {
			inst := instance("sample", "redis", i)
			for k := 0; k < 50; k++ {
				redis(inst, fmt.Sprintf("SET key-%d value-%d-on-redis-%d", k, k, i))
			}
		}
		pg := instance("sample", "postgres", 0)
		psql(pg, "CREATE TABLE accounts (id int primary key, owner text)")
		psql(pg, "INSERT INTO accounts SELECT g, 'owner ' || g FROM generate_series(1, 500) g")

		r := bbr(workDir, "sample", "deployment", "backup").expectSuccess()
		Expect(r.out).To(ContainSubstring("Backup created of sample"))
		artifactPath = onlyDir(workDir)
		Expect(filepath.Base(artifactPath)).To(MatchRegexp(`^sample_\d{8}T\d{6}Z$`))

		for _, f := range []string{"redis-0-redis.tar", "redis-1-redis.tar", "postgres-0-postgres.tar", "metadata"} {
			info, err := os.Stat(filepath.Join(artifactPath, f))
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))
		}
		art, err := artifact.Open(artifactPath)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), art)).To(Succeed())
		Expect(art.Metadata().Files()["postgres-0-postgres.tar"]).NotTo(BeEmpty())

		apiLog := jobLog(instance("sample", "api", 0), "api")
		Expect(apiLog).To(MatchRegexp(`(?s)locked .*script=pre-backup-lock.*unlocked .*after_success=true`))
		// The backup scripts ran inside the lock window.
		Expect(jobLog(instance("sample", "redis", 0), "redis")).To(ContainSubstring("script=backup"))
	})

	It("restores the data after it is destroyed", func() {
		Expect(artifactPath).NotTo(BeEmpty(), "needs the backup of the previous spec")
		for i := 0; i < 2; i++ {
			redis(instance("sample", "redis", i), "FLUSHALL")
		}
		pg := instance("sample", "postgres", 0)
		psql(pg, "DROP TABLE accounts")

		bbr(workDir, "sample", "deployment", "restore", "--artifact-path", artifactPath).expectSuccess()

		for i := 0; i < 2; i++ {
			inst := instance("sample", "redis", i)
			Expect(redis(inst, "DBSIZE")).To(Equal("50"))
			Expect(redis(inst, "GET key-7")).To(Equal(fmt.Sprintf("value-7-on-redis-%d", i)))
		}
		Expect(psql(pg, "SELECT count(*), sum(id) FROM accounts")).To(Equal("500|125250"))
		Expect(psql(pg, "SELECT owner FROM accounts WHERE id = 42")).To(Equal("owner 42"))
		Expect(jobLog(instance("sample", "api", 0), "api")).To(MatchRegexp(`(?s)script=pre-restore-lock.*script=post-restore-unlock`))
	})

	It("fails clearly with a wrong password", func() {
		r := runIn(workDir, append(bbrEnv("sample"), "BOSH_CLIENT_SECRET=wrong"), bbrBin, "deployment", "backup")
		Expect(r.code).NotTo(Equal(0))
		Expect(r.err).To(ContainSubstring("refused the credentials"))
	})

	It("fails clearly with an unknown deployment", func() {
		r := bbr(workDir, "no-such-deployment", "deployment", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("no-such-deployment"))
		Expect(r.err).To(ContainSubstring("doesn't exist"))
	})

	It("refuses an instance whose host key is not the one the Director reported", func() {
		inst := instance("sample", "redis", 1)
		keyPath := filepath.Join(filepath.Dir(inst.Root), "ssh_host_ed25519_key")
		original, err := os.ReadFile(keyPath)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			Expect(os.WriteFile(keyPath, original, 0o600)).To(Succeed())
			sh(fmt.Sprintf("kill -HUP %d", inst.SSHDPid))
			Eventually(func() string { return hostKeyOf(inst.IP) }).Should(Equal(strings.TrimSpace(inst.HostPublicKey)))
		})
		sh(fmt.Sprintf("rm -f %[1]s %[1]s.pub && ssh-keygen -q -t ed25519 -N '' -f %[1]s && kill -HUP %[2]d", keyPath, inst.SSHDPid))
		Eventually(func() string { return hostKeyOf(inst.IP) }).ShouldNot(Equal(strings.TrimSpace(inst.HostPublicKey)))

		r := bbr(workDir, "sample", "deployment", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("host key mismatch"))
		Expect(r.out).NotTo(ContainSubstring("Locking"), "nothing is locked when discovery fails")
	})
})

func instanceSlugs() []string {
	d, _ := lab.Find("sample")
	var out []string
	for _, i := range d.Instances {
		out = append(out, i.Slug())
	}
	return out
}

// hostKeyOf asks the sshd at ip for its ed25519 host key.
func hostKeyOf(ip string) string {
	out := sh(fmt.Sprintf("ssh-keyscan -t ed25519 %s 2>/dev/null | cut -d' ' -f2- || true", ip))
	if out == "" {
		return ""
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(out))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}
