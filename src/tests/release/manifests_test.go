package release

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	yaml "go.yaml.in/yaml/v2"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/errand"
	"github.com/bbr-release/bbr/src/lab/jobrender"
	"github.com/bbr-release/bbr/src/schedule"
)

// boshCLI is the real bosh CLI scripts/test builds into BBR_TEST_BIN.
func boshCLI() string {
	bin := os.Getenv("BBR_TEST_BIN")
	if bin == "" {
		Skip("BBR_TEST_BIN is not set: scripts/test builds the bosh CLI there")
	}
	path := filepath.Join(bin, "bosh")
	Expect(path).To(BeAnExistingFile(), "scripts/test builds the bosh CLI into BBR_TEST_BIN")
	return path
}

// Every manifest and ops-file combination interpolates with exactly the
// variables it declares (bosh int --var-errs --var-errs-unused), and the
// errand jobs' properties it produces render into a config the errand
// accepts.
var _ = Describe("manifests and ops-files", func() {
	base := map[string]any{
		"director_url":       "https://10.0.0.6:25555",
		"director_ca_cert":   "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"bbr_client":         "admin",
		"bbr_client_secret":  "secret",
		"deployments":        []string{"cf", "redis"},
		"restore_deployment": "cf",
	}
	standalone := map[string]any{"deployment_name": "bbr", "az": "z1", "vm_type": "default", "persistent_disk_type": "10GB", "network": "default"}

	DescribeTable("interpolate and render",
		func(manifest string, ops []string, check func(backup, restore errand.Config)) {
			root := repoRoot()
			vars := map[string]any{}
			for k, v := range base {
				vars[k] = v
			}
			if manifest == "manifests/bbr.yml" {
				for k, v := range standalone {
					vars[k] = v
				}
			}
			if slices.Contains(ops, "uaa-client") {
				delete(vars, "bbr_client")
				delete(vars, "bbr_client_secret")
				vars["bbr_uaa_client"], vars["bbr_uaa_client_secret"] = "bbr-uaa", "uaa-secret"
			}
			if slices.Contains(ops, "all-deployments") {
				delete(vars, "deployments")
			}
			if slices.Contains(ops, "retention") {
				vars["keep_last"] = 3
			}
			if slices.Contains(ops, "s3-destination") {
				vars["s3_bucket"], vars["s3_prefix"], vars["s3_endpoint"], vars["s3_region"] = "bbr-backups", "foundation-1", "https://s3.example.com:9000", "eu-west-1"
				vars["s3_access_key_id"], vars["s3_secret_access_key"] = "AKIAEXAMPLE", "s3-secret"
			}
			if slices.Contains(ops, "encryption") {
				vars["backup_encryption_recipients"] = []string{testKey.Recipient().String()}
			}
			if slices.Contains(ops, "encryption-identity") {
				vars["backup_encryption_identity"] = testKey.String()
			}
			if slices.Contains(ops, "schedule") {
				vars["backup_schedule"], vars["backup_time_zone"] = "30 2 * * *", "Europe/Berlin"
			}
			if slices.Contains(ops, "backup-director") {
				vars["bosh_director_host"], vars["bosh_director_ssh_user"] = "10.0.0.6", "bbr"
				vars["bosh_director_ssh_key"], vars["bosh_director_host_keys"] = testSSHKey()
			}
			raw, err := yaml.Marshal(vars)
			Expect(err).NotTo(HaveOccurred())
			varsFile := filepath.Join(GinkgoT().TempDir(), "vars.yml")
			Expect(os.WriteFile(varsFile, raw, 0o600)).To(Succeed())

			args := []string{"int", filepath.Join(root, manifest), "--vars-file", varsFile, "--var-errs", "--var-errs-unused"}
			for _, o := range ops {
				args = append(args, "-o", filepath.Join(root, "manifests", "ops", o+".yml"))
			}
			out, err := exec.Command(boshCLI(), args...).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "bosh %s:\n%s", strings.Join(args, " "), out)

			var m struct {
				Releases       []struct{ Name string } `yaml:"releases"`
				InstanceGroups []struct {
					Name string `yaml:"name"`
					Jobs []struct {
						Name       string         `yaml:"name"`
						Release    string         `yaml:"release"`
						Properties map[string]any `yaml:"properties"`
					} `yaml:"jobs"`
				} `yaml:"instance_groups"`
			}
			Expect(yaml.Unmarshal(out, &m)).To(Succeed())
			Expect(m.Releases).To(ContainElement(HaveField("Name", "bbr")))
			configs := map[string]errand.Config{}
			for _, g := range m.InstanceGroups {
				for _, j := range g.Jobs {
					if j.Release != "bbr" {
						continue
					}
					Expect(g.Name).To(Equal("jumpbox"))
					dst := GinkgoT().TempDir()
					inst := jobrender.Instance{Deployment: "d", Group: g.Name, ID: "id", IP: "10.0.0.5", Bootstrap: true}
					Expect(jobrender.Render(filepath.Join(root, "jobs", j.Name), dst, inst, j.Properties)).To(Succeed())
					if j.Name == "scheduler" {
						sc, err := schedule.LoadConfig(filepath.Join(dst, "config", "config.yml"))
						Expect(err).NotTo(HaveOccurred())
						Expect(sc).To(Equal(schedule.Config{Schedule: "30 2 * * *", TimeZone: "Europe/Berlin", MinInterval: "15m", BackupConfig: "/var/vcap/jobs/backup/config/config.yml"}))
						configs[j.Name] = errand.Config{}
						continue
					}
					cfg, err := errand.LoadConfig(filepath.Join(dst, "config", "config.yml"))
					Expect(err).NotTo(HaveOccurred())
					configs[j.Name] = cfg
				}
			}
			Expect(configs).To(HaveLen(map[bool]int{true: 3, false: 2}[slices.Contains(ops, "schedule")]))
			Expect(configs).To(HaveKey("backup"))
			Expect(configs).To(HaveKey("restore"))
			Expect(configs["restore"].CheckRestore()).To(Succeed())
			Expect(configs["backup"].CheckBackup()).To(Succeed())
			check(configs["backup"], configs["restore"])
		},
		Entry("standalone", "manifests/bbr.yml", nil, func(b, r errand.Config) {
			Expect(b.Deployments).To(Equal([]string{"cf", "redis"}))
			Expect(b.KeepLast).To(Equal(7))
			Expect(r.Restore.Deployment).To(Equal("cf"))
		}),
		Entry("standalone, UAA client, all deployments, retention", "manifests/bbr.yml", []string{"uaa-client", "all-deployments", "retention"}, func(b, r errand.Config) {
			Expect(b.Director.Client).To(Equal("bbr-uaa"))
			Expect(r.Director.ClientSecret).To(Equal("uaa-secret"))
			Expect(b.AllDeployments).To(BeTrue())
			Expect(b.KeepLast).To(Equal(3))
		}),
		Entry("colocated on jumpbox-deployment", "src/tests/release/testdata/jumpbox.yml", []string{"colocate-on-jumpbox"}, func(b, r errand.Config) {
			Expect(b.Director.URL).To(Equal("https://10.0.0.6:25555"))
		}),
		Entry("colocated, UAA client, all deployments, retention", "src/tests/release/testdata/jumpbox.yml", []string{"colocate-on-jumpbox", "uaa-client", "all-deployments", "retention"}, func(b, r errand.Config) {
			Expect(b.AllDeployments).To(BeTrue())
			Expect(b.Director.Client).To(Equal("bbr-uaa"))
		}),
		Entry("standalone, S3 destination", "manifests/bbr.yml", []string{"s3-destination"}, expectS3),
		Entry("colocated with every ops-file, S3 destination", "src/tests/release/testdata/jumpbox.yml",
			[]string{"colocate-on-jumpbox", "uaa-client", "all-deployments", "retention", "s3-destination"}, expectS3),
		Entry("standalone, encryption", "manifests/bbr.yml", []string{"encryption"}, func(b, r errand.Config) {
			expectEncryption(b, r, false)
		}),
		Entry("colocated with every ops-file, encryption and its identity", "src/tests/release/testdata/jumpbox.yml",
			[]string{"colocate-on-jumpbox", "uaa-client", "all-deployments", "retention", "s3-destination", "encryption", "encryption-identity"},
			func(b, r errand.Config) {
				expectS3(b, r)
				expectEncryption(b, r, true)
			}),
		Entry("colocated, on a schedule, with the Director VM", "src/tests/release/testdata/jumpbox.yml",
			[]string{"colocate-on-jumpbox", "schedule", "backup-director"}, func(b, r errand.Config) {
				Expect(b.BoshDirector.Host).To(Equal("10.0.0.6"))
				Expect(b.BoshDirector.SSHUser).To(Equal("bbr"))
				_, err := b.BoshDirector.SSH()
				Expect(err).NotTo(HaveOccurred())
				Expect(r.BoshDirector.Host).To(BeEmpty(), "the restore errand never restores the Director")
			}),
	)
})

// testKey is the age key the encryption ops-files get.
var testKey = func() *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		panic(err)
	}
	return id
}()

// expectEncryption checks the backup errand encrypts to testKey and
// compresses, and the restore errand has the identity only when given.
func expectEncryption(b, r errand.Config, identity bool) {
	o, err := b.Transform()
	Expect(err).NotTo(HaveOccurred())
	Expect(o.Compress).To(BeTrue())
	Expect(o.Recipients).To(ConsistOf(HaveField("Name", testKey.Recipient().String())))
	Expect(b.Encryption.Identity).To(BeEmpty(), "the backup errand never holds the private key")
	o, err = r.Transform()
	Expect(err).NotTo(HaveOccurred())
	Expect(o.Identities).To(HaveLen(map[bool]int{true: 1, false: 0}[identity]))
}

// expectS3 checks both errands got the bucket s3-destination.yml gives.
func expectS3(b, r errand.Config) {
	for _, c := range []errand.Config{b, r} {
		Expect(c.S3).NotTo(BeNil())
		Expect(c.S3.Config()).To(And(HaveField("Bucket", "bbr-backups"), HaveField("Prefix", "foundation-1"),
			HaveField("Endpoint", "https://s3.example.com:9000"), HaveField("Region", "eu-west-1"),
			HaveField("SecretAccessKey", "s3-secret"), HaveField("PartSize", int64(16<<20)), HaveField("Concurrency", 4)))
	}
	Expect(b.KeepLocalCopy).To(BeFalse())
}

// testSSHKey is an SSH private key (PEM) and a known_hosts line, for the
// Director VM's ops-file.
func testSSHKey() (string, string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	sshPub, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	return string(pem.EncodeToMemory(block)), "10.0.0.6 " + string(ssh.MarshalAuthorizedKey(sshPub))
}
