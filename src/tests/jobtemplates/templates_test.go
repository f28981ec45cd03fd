package jobtemplates_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	yaml "go.yaml.in/yaml/v2"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/errand"
	"github.com/bbr-release/bbr/src/lab/jobrender"
	"github.com/bbr-release/bbr/src/schedule"
)

var jobsDir = filepath.Join("..", "..", "..", "jobs")

type rendered struct {
	run, config string
	cfg         errand.Config
}

// render renders job with the manifest's properties as the Director
// would, and parses the config with the errand's parser.
func render(job string, props map[string]any) (rendered, error) {
	inst := jobrender.Instance{Deployment: "jumpbox", Group: "jumpbox", ID: "0b1c", AZ: "z1", IP: "10.0.0.5", Bootstrap: true}
	dst := GinkgoT().TempDir()
	if err := jobrender.Render(filepath.Join(jobsDir, job), dst, inst, props); err != nil {
		return rendered{}, err
	}
	run, err := os.ReadFile(filepath.Join(dst, "bin", "run"))
	Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(filepath.Join(dst, "config", "config.yml"))
	Expect(err).NotTo(HaveOccurred())
	cfg, err := errand.ParseConfig(raw)
	Expect(err).NotTo(HaveOccurred(), "the errand must accept what its template rendered:\n%s", raw)
	Expect(exec.Command("bash", "-n", filepath.Join(dst, "bin", "run")).CombinedOutput()).To(BeEmpty(), "bin/run must be valid bash")
	return rendered{run: string(run), config: string(raw), cfg: cfg}, nil
}

func mustRender(job string, props map[string]any) rendered {
	r, err := render(job, props)
	Expect(err).NotTo(HaveOccurred())
	return r
}

func uaa() map[string]any {
	return map[string]any{"url": "https://10.0.0.6:25555", "client": "bbr-client", "client_secret": "s3cret"}
}

func basic() map[string]any {
	return map[string]any{"url": "https://10.0.0.6:25555", "username": "admin", "password": "p4ss"}
}

const ca = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJx\n-----END CERTIFICATE-----\n"

var _ = Describe("the job specs", func() {
	for _, job := range []string{"backup", "restore"} {
		It(job+": is an errand named "+job+" with the bbr package, an empty monit and a description and default for every property", func() {
			raw, err := os.ReadFile(filepath.Join(jobsDir, job, "spec"))
			Expect(err).NotTo(HaveOccurred())
			var spec struct {
				Name        string                    `yaml:"name"`
				Description string                    `yaml:"description"`
				Packages    []string                  `yaml:"packages"`
				Templates   map[string]string         `yaml:"templates"`
				Properties  map[string]map[string]any `yaml:"properties"`
			}
			Expect(yaml.UnmarshalStrict(raw, &spec)).To(Succeed())
			Expect(spec.Name).To(Equal(job))
			Expect(spec.Packages).To(Equal([]string{"bbr"}))
			Expect(spec.Templates).To(Equal(map[string]string{"run.erb": "bin/run", "config.yml.erb": "config/config.yml"}))
			for name, p := range spec.Properties {
				Expect(p).To(HaveKey("description"), name)
				Expect(p["description"]).NotTo(BeEmpty(), name)
				Expect(p).To(HaveKey("default"), name)
			}
			monit, err := os.ReadFile(filepath.Join(jobsDir, job, "monit"))
			Expect(err).NotTo(HaveOccurred())
			Expect(monit).To(BeEmpty(), "an errand runs no process under monit")
		})
	}
})

var _ = Describe("the backup job's templates", func() {
	It("renders a Director user (basic auth) and a list of deployments with the spec's defaults", func() {
		r := mustRender("backup", map[string]any{"director": basic(), "deployments": []any{"cf", "redis-1"}})
		Expect(r.cfg.Director.Username).To(Equal("admin"))
		Expect(r.cfg.Director.Password).To(Equal("p4ss"))
		Expect(r.cfg.Director.Client).To(BeEmpty())
		id, secret := r.cfg.Director.Credentials()
		Expect([]string{id, secret}).To(Equal([]string{"admin", "p4ss"}))
		Expect(r.cfg.Deployments).To(Equal([]string{"cf", "redis-1"}))
		Expect(r.cfg.AllDeployments).To(BeFalse())
		Expect(r.cfg.ArtifactDirectory).To(Equal("/var/vcap/store/bbr/artifacts"))
		Expect(r.cfg.KeepLast).To(Equal(7))
		Expect(r.cfg.Parallelism).To(Equal(20))
		Expect(r.cfg.ScriptTimeout).To(Equal(0))
		Expect(r.cfg.WithManifest).To(BeFalse())
		Expect(r.cfg.CheckBackup()).To(Succeed())

		Expect(r.run).To(ContainSubstring("\nexec /var/vcap/packages/bbr/bin/bbr errand backup --config /var/vcap/jobs/backup/config/config.yml\n"))
		Expect(r.run).To(ContainSubstring("/var/vcap/sys/log/backup/backup.log"))
		Expect(r.run).To(ContainSubstring("\ncd /var/vcap/sys/log/backup\n"), "bbr-<time>.err.log lands with the logs")
		Expect(r.run).NotTo(ContainSubstring("p4ss"), "no secret on a command line")
	})

	It("renders a UAA client, all deployments, a CA, retention, parallelism, timeouts and the manifest option", func() {
		d := uaa()
		d["ca_cert"] = ca
		r := mustRender("backup", map[string]any{"director": d, "all_deployments": true, "keep_last": 3, "with_manifest": true,
			"script_timeout_seconds": 1800, "parallelism": 50, "artifact_directory": "/var/vcap/store/bbr's backups"})
		Expect(r.cfg.Director.Client).To(Equal("bbr-client"))
		Expect(r.cfg.Director.ClientSecret).To(Equal("s3cret"))
		Expect(r.cfg.Director.CACert).To(Equal(ca))
		Expect(r.cfg.AllDeployments).To(BeTrue())
		Expect(r.cfg.Deployments).To(BeEmpty())
		Expect(r.cfg.KeepLast).To(Equal(3))
		Expect(r.cfg.WithManifest).To(BeTrue())
		Expect(r.cfg.ScriptTimeout).To(Equal(1800))
		Expect(r.cfg.ScriptTimeoutDuration().Minutes()).To(Equal(30.0))
		Expect(r.cfg.Parallelism).To(Equal(50))
		Expect(r.cfg.ArtifactDirectory).To(Equal("/var/vcap/store/bbr's backups"))
		Expect(r.run).To(ContainSubstring(`/var/vcap/store/bbr\'s\ backups`), "the directory is shell-quoted in bin/run")
	})

	It("keeps every value as given, whatever YAML would make of it unquoted", func() {
		d := uaa()
		d["client_secret"] = "*x: \"y\" # {z}, [w]\n- 'v'\\\t"
		d["client"] = "yes"
		d["url"] = "10.0.0.6"
		r := mustRender("backup", map[string]any{"director": d, "deployments": []any{"no", "1.0", "null"}})
		Expect(r.cfg.Director.ClientSecret).To(Equal("*x: \"y\" # {z}, [w]\n- 'v'\\\t"))
		Expect(r.cfg.Director.Client).To(Equal("yes"))
		Expect(r.cfg.Deployments).To(Equal([]string{"no", "1.0", "null"}))
		Expect(r.cfg.Director.URL).To(Equal("https://10.0.0.6:25555"), "a bare host, as the bosh CLI takes it")
	})

	DescribeTable("fails at render time on an invalid combination, saying what to fix",
		func(props map[string]any, want string) {
			_, err := render("backup", props)
			Expect(err).To(MatchError(SatisfyAll(ContainSubstring("backup errand: "), ContainSubstring(want))))
		},
		Entry("no Director URL", map[string]any{"director": map[string]any{"client": "c", "client_secret": "s"}, "deployments": []any{"a"}},
			"director.url is required"),
		Entry("an http URL", map[string]any{"director": map[string]any{"url": "http://d:25555", "client": "c", "client_secret": "s"}, "deployments": []any{"a"}},
			`director.url "http://d:25555" must be an https URL`),
		Entry("a CA that is not PEM", map[string]any{"director": map[string]any{"url": "https://d", "client": "c", "client_secret": "s", "ca_cert": "/path/ca.pem"}, "deployments": []any{"a"}},
			"director.ca_cert must be the PEM of a CA certificate"),
		Entry("no credentials", map[string]any{"director": map[string]any{"url": "https://d"}, "deployments": []any{"a"}},
			"no Director credentials: set director.client and director.client_secret"),
		Entry("a client and a user", map[string]any{"director": map[string]any{"url": "https://d", "client": "c", "client_secret": "s", "username": "u", "password": "p"}, "deployments": []any{"a"}},
			"not both"),
		Entry("a client without its secret", map[string]any{"director": map[string]any{"url": "https://d", "client": "c"}, "deployments": []any{"a"}},
			"director.client and director.client_secret are both required"),
		Entry("a user without a password", map[string]any{"director": map[string]any{"url": "https://d", "username": "u"}, "deployments": []any{"a"}},
			"director.username and director.password are both required"),
		Entry("nothing to back up", map[string]any{"director": uaa()},
			"there is nothing to back up"),
		Entry("both a list and all", map[string]any{"director": uaa(), "deployments": []any{"a"}, "all_deployments": true},
			"set deployments or all_deployments, not both"),
		Entry("deployments not a list", map[string]any{"director": uaa(), "deployments": "cf"},
			"deployments must be a list"),
		Entry("a bad deployment name", map[string]any{"director": uaa(), "deployments": []any{"cf", "../etc"}},
			`deployments: "../etc" is not a BOSH deployment name`),
		Entry("negative retention", map[string]any{"director": uaa(), "deployments": []any{"a"}, "keep_last": -1},
			"keep_last must be a whole number, 0 or more (got -1)"),
		Entry("retention as text", map[string]any{"director": uaa(), "deployments": []any{"a"}, "keep_last": "7"},
			`keep_last must be a whole number, 0 or more (got "7")`),
		Entry("no parallelism", map[string]any{"director": uaa(), "deployments": []any{"a"}, "parallelism": 0},
			"parallelism must be a whole number from 1 to 1000"),
		Entry("a negative timeout", map[string]any{"director": uaa(), "deployments": []any{"a"}, "script_timeout_seconds": -5},
			"script_timeout_seconds must be a whole number, 0 (no limit) or more"),
		Entry("a relative artifact directory", map[string]any{"director": uaa(), "deployments": []any{"a"}, "artifact_directory": "backups"},
			"must be an absolute path"),
		Entry("lock-free for all deployments", map[string]any{"director": uaa(), "all_deployments": true, "unsafe_lock_free": true},
			"unsafe_lock_free cannot be combined with all_deployments"),
	)
})

var _ = Describe("the restore job's templates", func() {
	It("renders one named deployment, restored from its newest good backup", func() {
		r := mustRender("restore", map[string]any{"director": uaa(), "restore": map[string]any{"deployment": "cf"}})
		Expect(r.cfg.Restore.Deployment).To(Equal("cf"))
		Expect(r.cfg.Restore.Artifact).To(BeEmpty())
		Expect(r.cfg.CheckRestore()).To(Succeed())
		Expect(r.cfg.ArtifactDirectory).To(Equal("/var/vcap/store/bbr/artifacts"), "where the backup errand puts them by default")
		Expect(r.run).To(ContainSubstring("\nexec /var/vcap/packages/bbr/bin/bbr errand restore --config /var/vcap/jobs/restore/config/config.yml\n"))
		Expect(r.run).To(ContainSubstring("/var/vcap/sys/log/restore/restore.log"))
	})

	It("deploys without a deployment to restore, and the errand then refuses to run", func() {
		r := mustRender("restore", map[string]any{"director": uaa()})
		Expect(r.cfg.Restore.Deployment).To(BeEmpty())
		Expect(r.cfg.CheckRestore()).To(MatchError(ContainSubstring("restore.deployment is required")))
		err := errand.Runner{Config: r.cfg}.RunRestore(context.Background())
		Expect(err).To(MatchError(ContainSubstring("never guesses")))
	})

	It("renders a named backup and a Director user", func() {
		r := mustRender("restore", map[string]any{"director": basic(),
			"restore": map[string]any{"deployment": "cf", "artifact": "cf_20261125T080000Z"}, "artifact_directory": "/var/vcap/store/elsewhere"})
		Expect(r.cfg.Restore.Artifact).To(Equal("cf_20261125T080000Z"))
		Expect(r.cfg.Director.Username).To(Equal("admin"))
		Expect(r.cfg.ArtifactDirectory).To(Equal("/var/vcap/store/elsewhere"))
	})

	DescribeTable("fails at render time on an invalid combination, saying what to fix",
		func(props map[string]any, want string) {
			_, err := render("restore", props)
			Expect(err).To(MatchError(SatisfyAll(ContainSubstring("restore errand: "), ContainSubstring(want))))
		},
		Entry("a backup named without its deployment", map[string]any{"director": uaa(), "restore": map[string]any{"artifact": "cf_20261125T080000Z"}},
			"restore.artifact names a backup but restore.deployment is empty"),
		Entry("a deployment name that YAML read as a boolean (-v restore_deployment=no)", map[string]any{"director": uaa(), "restore": map[string]any{"deployment": false}},
			"restore.deployment must be a string (got false, a boolean)"),
		Entry("a backup name that YAML read as a number", map[string]any{"director": uaa(), "restore": map[string]any{"deployment": "cf", "artifact": 20261125}},
			"restore.artifact must be a string (got 20261125, a number)"),
		Entry("a bad deployment name", map[string]any{"director": uaa(), "restore": map[string]any{"deployment": "a b"}},
			`restore.deployment "a b" is not a BOSH deployment name`),
		Entry("an artifact path", map[string]any{"director": uaa(), "restore": map[string]any{"deployment": "cf", "artifact": "/tmp/cf_20261125T080000Z"}},
			"must be a backup's directory name (cf_<timestamp>), not a path"),
		Entry("no credentials", map[string]any{"director": map[string]any{"url": "https://d"}, "restore": map[string]any{"deployment": "cf"}},
			"no Director credentials"),
		Entry("a client and a user", map[string]any{"director": map[string]any{"url": "https://d", "client": "c", "client_secret": "s", "username": "u", "password": "p"}, "restore": map[string]any{"deployment": "cf"}},
			"not both"),
	)
})

var _ = Describe("the errands' bin/run when the errand is cancelled", func() {
	// The agent cancels an errand with SIGTERM to its whole process group,
	// so the tee that copies bbr's output to the job log gets it too. bbr's
	// stand-in here answers SIGTERM as bbr does: it reports, "cleans up",
	// and exits. Its last words must reach the errand's output and the log.
	props := map[string]map[string]any{
		"backup":  {"director": uaa(), "deployments": []string{"cf"}},
		"restore": {"director": uaa(), "restore": map[string]any{"deployment": "cf"}},
	}
	for _, job := range []string{"backup", "restore"} {
		It(job+": the output tee outlives the signal, so bbr's cleanup is seen and logged", func() {
			r := mustRender(job, props[job])
			root := GinkgoT().TempDir()
			run := filepath.Join(root, "run")
			Expect(os.WriteFile(run, []byte(strings.ReplaceAll(r.run, "/var/vcap", root)), 0o755)).To(Succeed())
			bbr := filepath.Join(root, "packages", "bbr", "bin", "bbr")
			Expect(os.MkdirAll(filepath.Dir(bbr), 0o755)).To(Succeed())
			Expect(os.WriteFile(bbr, []byte(`#!/bin/bash
trap 'echo "stand-in bbr: unlocked and cleaned up after TERM"; exit 7' TERM
echo "stand-in bbr: started"
touch "`+root+`/started"
while :; do sleep 0.05; done
`), 0o755)).To(Succeed())

			out := gbytes.NewBuffer()
			cmd := exec.Command("bash", run)
			cmd.Stdout, cmd.Stderr = out, out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			Expect(cmd.Start()).To(Succeed())
			Eventually(filepath.Join(root, "started")).Should(BeAnExistingFile())
			Expect(syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)).To(Succeed())
			err := cmd.Wait()
			var exitErr *exec.ExitError
			Expect(errors.As(err, &exitErr)).To(BeTrue(), "%v", err)
			Expect(exitErr.ExitCode()).To(Equal(7), "bbr's own exit code, not a death by signal")
			Expect(string(out.Contents())).To(ContainSubstring("cleaned up after TERM"))
			logged, err := os.ReadFile(filepath.Join(root, "sys", "log", job, job+".log"))
			Expect(err).NotTo(HaveOccurred())
			Expect(string(logged)).To(SatisfyAll(ContainSubstring("stand-in bbr: started\n"), ContainSubstring("stand-in bbr: unlocked and cleaned up after TERM\n")))
		})
	}
})

// jobProps are valid properties of each job, to which a spec adds one
// wrong value.
func jobProps(job string, extra map[string]any) map[string]any {
	props := map[string]any{"director": uaa(), "deployments": []any{"cf"}}
	if job == "restore" {
		props = map[string]any{"director": uaa(), "restore": map[string]any{"deployment": "cf"}}
	}
	for k, v := range extra {
		props[k] = v
	}
	return props
}

var _ = Describe("both jobs' templates", func() {
	for _, job := range []string{"backup", "restore"} {
		refuses := func(dir, want string) {
			_, err := render(job, jobProps(job, map[string]any{"artifact_directory": dir}))
			Expect(err).To(MatchError(SatisfyAll(ContainSubstring(fmt.Sprintf("%s errand: artifact_directory %q", job, dir)), ContainSubstring(want),
				ContainSubstring("use a folder of its own on the persistent disk, e.g. /var/vcap/store/bbr/artifacts"))), dir)
			_, err = errand.ParseConfig([]byte("{director: {url: \"https://d\", client: a, client_secret: b}, artifact_directory: \"" + dir + "\"}"))
			Expect(err).To(MatchError(ContainSubstring(want)), "the errand's own check agrees on %s", dir)
		}

		It(job+": refuses every directory the errand's one list refuses, and what lies in its managed trees", func() {
			system, managed := errand.RefusedArtifactDirectories()
			for _, dir := range system {
				refuses(dir, "is a system directory")
			}
			for _, tree := range managed {
				refuses(tree, "is managed by BOSH or bbr")
				refuses(tree+"/x", "is managed by BOSH or bbr")
			}
		})

		DescribeTable(job+": refuses other spellings of them, and ..",
			refuses,
			Entry("the root, spelt twice", "//", "is a system directory"),
			Entry("the persistent disk, with a trailing slash", "/var/vcap/store/", "is a system directory"),
			Entry("the persistent disk, with a dot", "/var/vcap/store/./", "is a system directory"),
			Entry("a path with ..", "/var/vcap/store/bbr/../../..", `must not contain ".."`),
			Entry("a path that ends in ..", "/var/vcap/store/bbr/..", `must not contain ".."`),
		)

		It(job+": takes a folder of its own on the persistent disk, with dots in names", func() {
			r := mustRender(job, jobProps(job, map[string]any{"artifact_directory": "/var/vcap/store/bbr..backups/.x"}))
			Expect(r.cfg.ArtifactDirectory).To(Equal("/var/vcap/store/bbr..backups/.x"))
		})

		It(job+": writes the config as ASCII, so every value reads back exactly, whatever characters it holds", func() {
			// NEL (U+0085) and U+2028/U+2029 are line breaks to YAML, not
			// to JSON: written raw, YAML would read another secret.
			secret := "pä\u0085ss\u2028wö\u2029rd \U0001F511 \u00a0\ufeff\x7f end" + `, and literally \u00e4 \\ud83d \U0001F511`
			d := uaa()
			d["client_secret"] = secret
			r := mustRender(job, jobProps(job, map[string]any{"director": d}))
			Expect(r.cfg.Director.ClientSecret).To(Equal(secret))
			for i, b := range []byte(r.config) {
				Expect(b).To(BeNumerically("<", 0x7f), "byte %d of the config is not printable ASCII:\n%s", i, r.config)
			}
		})

		It(job+": refuses a certificate variable (a hash, with its private key) as director.ca_cert, without repeating the key", func() {
			d := uaa()
			d["ca_cert"] = map[string]any{"ca": ca, "certificate": ca, "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretkeybytes\n-----END RSA PRIVATE KEY-----\n"}
			_, err := render(job, jobProps(job, map[string]any{"director": d}))
			Expect(err).To(MatchError(SatisfyAll(ContainSubstring(job+" errand: director.ca_cert must be a string"),
				ContainSubstring("give its .ca"))))
			Expect(err.Error()).NotTo(ContainSubstring("MIIEsecretkeybytes"))
		})

		It(job+": refuses a private key pasted into director.ca_cert, without repeating it", func() {
			d := uaa()
			d["ca_cert"] = ca + "-----BEGIN PRIVATE KEY-----\nMIIEsecretkeybytes\n-----END PRIVATE KEY-----\n"
			_, err := render(job, jobProps(job, map[string]any{"director": d}))
			Expect(err).To(MatchError(ContainSubstring(job + " errand: director.ca_cert holds a private key: give only the CA's certificate")))
			Expect(err.Error()).NotTo(ContainSubstring("MIIEsecretkeybytes"))
		})
	}

	DescribeTable("backup: refuses a boolean property given as anything but true or false",
		func(name string, value any, want string) {
			props := jobProps("backup", map[string]any{name: value})
			if name == "all_deployments" {
				delete(props, "deployments")
			}
			_, err := render("backup", props)
			Expect(err).To(MatchError(ContainSubstring("backup errand: " + name + " must be true or false " + want)))
		},
		Entry("with_manifest as the string false", "with_manifest", "false", `(got "false", a string: write it without quotes)`),
		Entry("unsafe_lock_free as the string false", "unsafe_lock_free", "false", `(got "false", a string: write it without quotes)`),
		Entry("all_deployments as the string false", "all_deployments", "false", `(got "false", a string: write it without quotes)`),
		Entry("all_deployments as the string true", "all_deployments", "true", `(got "true", a string: write it without quotes)`),
		Entry("with_manifest as a number", "with_manifest", 1, "(got 1)"),
	)

	It("backup: takes true and false as booleans", func() {
		r := mustRender("backup", jobProps("backup", map[string]any{"with_manifest": true, "unsafe_lock_free": true, "all_deployments": false}))
		Expect(r.cfg.WithManifest).To(BeTrue())
		Expect(r.cfg.UnsafeLockFree).To(BeTrue())
		Expect(r.cfg.AllDeployments).To(BeFalse())
	})
})

var _ = Describe("the jobs' bucket properties", func() {
	s3 := func() map[string]any {
		return map[string]any{"bucket": "bbr-backups", "prefix": "/foundation-1/", "endpoint": "https://s3.example.com:9000",
			"access_key_id": "AKIA", "secret_access_key": "s3-s3cret", "sse": "aws:kms", "sse_kms_key_id": "key-1", "part_size_mib": 64}
	}
	for _, job := range []string{"backup", "restore"} {
		It(job+": renders the bucket, and no s3 block without a bucket", func() {
			r := mustRender(job, jobProps(job, map[string]any{"s3": s3()}))
			Expect(r.cfg.S3).NotTo(BeNil())
			c := r.cfg.S3.Config()
			Expect(c).To(And(HaveField("Bucket", "bbr-backups"), HaveField("Prefix", "foundation-1"), HaveField("Addressing", "auto"),
				HaveField("SecretAccessKey", "s3-s3cret"), HaveField("SSE", "aws:kms"), HaveField("KMSKeyID", "key-1"),
				HaveField("PartSize", int64(64<<20)), HaveField("Concurrency", 4), HaveField("StallTimeout", time.Minute)))
			Expect(r.run).NotTo(ContainSubstring("s3-s3cret"), "no secret on a command line")
			Expect(mustRender(job, jobProps(job, nil)).cfg.S3).To(BeNil())
		})
		It(job+": passes a bucket setting bbr cannot use on to the errand, which refuses it without repeating the secret", func() {
			bad := s3()
			bad["sse"] = "rot13"
			dst := GinkgoT().TempDir()
			inst := jobrender.Instance{Deployment: "jumpbox", Group: "jumpbox", ID: "0b1c", AZ: "z1", IP: "10.0.0.5", Bootstrap: true}
			Expect(jobrender.Render(filepath.Join(jobsDir, job), dst, inst, jobProps(job, map[string]any{"s3": bad}))).To(Succeed())
			_, err := errand.LoadConfig(filepath.Join(dst, "config", "config.yml"))
			Expect(err).To(MatchError(ContainSubstring("s3: the server-side encryption \"rot13\" must be AES256 (SSE-S3) or aws:kms (SSE-KMS)")))
			Expect(err.Error()).NotTo(ContainSubstring("s3-s3cret"))
		})
	}

	It("backup: renders keep_local_copy, max_age_days and in_progress_grace_hours, and refuses a local copy without a bucket", func() {
		r := mustRender("backup", jobProps("backup", map[string]any{"s3": s3(), "keep_local_copy": true, "max_age_days": 30}))
		Expect(r.cfg.KeepLocalCopy).To(BeTrue())
		Expect(r.cfg.ValidateAfterBackup).To(Equal("auto"))
		_, err := render("backup", jobProps("backup", map[string]any{"validate_after_backup": "sometimes"}))
		Expect(err).To(MatchError(ContainSubstring("validate_after_backup must be auto, always or never")))
		Expect(r.cfg.Retention().MaxAge.Hours()).To(Equal(720.0))
		Expect(r.cfg.Retention().InProgressGrace.Hours()).To(Equal(24.0), "a backup in progress is left alone for a day")
		r = mustRender("backup", jobProps("backup", map[string]any{"in_progress_grace_hours": 6}))
		Expect(r.cfg.Retention().InProgressGrace.Hours()).To(Equal(6.0))
		_, err = render("backup", jobProps("backup", map[string]any{"in_progress_grace_hours": 0}))
		Expect(err).To(MatchError(ContainSubstring("in_progress_grace_hours must be a whole number, 1 or more (got 0)")))
		_, err = render("backup", jobProps("backup", map[string]any{"keep_local_copy": true}))
		Expect(err).To(MatchError(ContainSubstring("keep_local_copy needs s3.bucket")))
	})
})

var _ = Describe("the jobs' compression and encryption properties", func() {
	const recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	const identity = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"

	It("backup: renders zstd and the recipients, and refuses a private key as a recipient without repeating it", func() {
		r := mustRender("backup", jobProps("backup", map[string]any{
			"compression": map[string]any{"enabled": true, "level": 9}, "encryption": map[string]any{"recipients": []any{recipient}}}))
		o, err := r.cfg.Transform()
		Expect(err).NotTo(HaveOccurred())
		Expect(o).To(And(HaveField("Compress", true), HaveField("Level", 9)))
		Expect(o.Recipients).To(HaveLen(1))
		Expect(o.Recipients[0].Name).To(Equal(recipient))
		Expect(mustRender("backup", jobProps("backup", nil)).cfg.Transform()).To(HaveField("Recipients", BeEmpty()))

		_, err = render("backup", jobProps("backup", map[string]any{"encryption": map[string]any{"recipients": []any{identity}}}))
		Expect(err).To(MatchError(ContainSubstring("encryption.recipients holds a private key")))
		Expect(err.Error()).NotTo(ContainSubstring(identity))
		_, err = render("backup", jobProps("backup", map[string]any{"compression": map[string]any{"level": 20}}))
		Expect(err).To(MatchError(ContainSubstring("compression.level must be a whole number from 0 to 19")))
	})

	It("restore: renders validate mode, its deployments and the identity, which stays off bin/run", func() {
		id, err := age.GenerateX25519Identity()
		Expect(err).NotTo(HaveOccurred())
		r := mustRender("restore", jobProps("restore", map[string]any{
			"mode": "validate", "validate": map[string]any{"deployments": []any{"cf"}}, "encryption": map[string]any{"identity": id.String() + "\n"}}))
		Expect(r.cfg.Mode).To(Equal("validate"))
		Expect(r.cfg.Validate.Deployments).To(Equal([]string{"cf"}))
		o, err := r.cfg.Transform()
		Expect(err).NotTo(HaveOccurred())
		Expect(o.Identities).To(HaveLen(1))
		Expect(r.run).NotTo(ContainSubstring("AGE-SECRET-KEY"))
		_, err = render("restore", jobProps("restore", map[string]any{"mode": "verify"}))
		Expect(err).To(MatchError(ContainSubstring("mode must be restore or validate")))
	})
})

var _ = Describe("both jobs' monitoring properties", func() {
	for _, job := range []string{"backup", "restore"} {
		It(job+": renders the metrics directory and the webhook, whose URL stays off bin/run and out of errors", func() {
			r := mustRender(job, jobProps(job, nil))
			Expect(r.cfg.MetricsDirectory).To(Equal("/var/vcap/store/bbr/metrics"))
			Expect(r.cfg.Webhook.URL).To(BeEmpty())
			Expect(r.cfg.Webhook.OnSuccess).To(BeFalse())
			r = mustRender(job, jobProps(job, map[string]any{"metrics_directory": "",
				"webhook": map[string]any{"url": "https://hooks.example.com/services/s3cret", "on_success": true}}))
			Expect(r.cfg.MetricsDirectory).To(BeEmpty())
			Expect(r.cfg.Webhook.URL).To(Equal("https://hooks.example.com/services/s3cret"))
			Expect(r.cfg.Webhook.OnSuccess).To(BeTrue())
			Expect(r.run).NotTo(ContainSubstring("s3cret"))
			_, err := render(job, jobProps(job, map[string]any{"webhook": map[string]any{"url": "hooks.example.com/s3cret"}}))
			Expect(err).To(MatchError(ContainSubstring("webhook.url must be an http(s) URL")))
			Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		})
	}
})

var _ = Describe("the backup job's bosh_director properties", func() {
	var privateKey, hostKey string

	BeforeEach(func() {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		block, err := ssh.MarshalPrivateKey(priv, "")
		Expect(err).NotTo(HaveOccurred())
		privateKey = string(pem.EncodeToMemory(block))
		sshPub, err := ssh.NewPublicKey(pub)
		Expect(err).NotTo(HaveOccurred())
		hostKey = "10.0.0.6 " + string(ssh.MarshalAuthorizedKey(sshPub))
	})

	director := func(extra map[string]any) map[string]any {
		d := map[string]any{"host": "10.0.0.6", "private_key": privateKey, "host_keys": hostKey}
		maps.Copy(d, extra)
		return map[string]any{"director": uaa(), "bosh_director": d}
	}

	It("renders the Director VM alone as something to back up, with the spec's ssh_user", func() {
		r := mustRender("backup", director(nil))
		Expect(r.cfg.BoshDirector.Host).To(Equal("10.0.0.6"))
		Expect(r.cfg.BoshDirector.SSHUser).To(Equal("bbr"))
		Expect(r.cfg.BoshDirector.PrivateKey).To(Equal(privateKey))
		Expect(r.cfg.BoshDirector.Name()).To(Equal("10.0.0.6"))
		Expect(r.cfg.CheckBackup()).To(Succeed())
		cfg, err := r.cfg.BoshDirector.SSH()
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Addr).To(Equal("10.0.0.6:22"))
	})

	DescribeTable("fails at render time without what pins and reaches the VM, never quoting a key",
		func(extra map[string]any, want string) {
			_, err := render("backup", director(extra))
			Expect(err).To(MatchError(ContainSubstring(want)))
			Expect(err.Error()).NotTo(ContainSubstring("BEGIN OPENSSH"))
		},
		Entry("no host keys", map[string]any{"host_keys": ""}, "bosh_director.host_keys is required with bosh_director.host"),
		Entry("a private key as host keys", map[string]any{"host_keys": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"}, "bosh_director.host_keys holds a private key"),
		Entry("no private key", map[string]any{"private_key": ""}, "bosh_director.private_key is required"),
		Entry("no user", map[string]any{"ssh_user": ""}, "bosh_director.ssh_user is required"),
	)

	It("is refused by the errand when a host key line does not parse, and when the key is not usable", func() {
		cfg := errand.Config{BoshDirector: errand.BoshDirector{Host: "10.0.0.6", SSHUser: "bbr", PrivateKey: privateKey, HostKeys: "not a key"}}
		_, err := cfg.BoshDirector.SSH()
		Expect(err).To(MatchError(ContainSubstring("bosh_director.host_keys: line 1 is neither a public key")))
		cfg.BoshDirector.HostKeys, cfg.BoshDirector.PrivateKey = hostKey, "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n"
		_, err = cfg.BoshDirector.SSH()
		Expect(err).To(MatchError("bosh_director.private_key is not a usable private key (an unencrypted PEM or OpenSSH key is needed)"))
	})
})

var _ = Describe("the scheduler job", func() {
	renderScheduler := func(props map[string]any) (string, error) {
		inst := jobrender.Instance{Deployment: "jumpbox", Group: "jumpbox", ID: "0b1c", AZ: "z1", IP: "10.0.0.5", Bootstrap: true}
		dst := GinkgoT().TempDir()
		return dst, jobrender.Render(filepath.Join(jobsDir, "scheduler"), dst, inst, props)
	}

	It("renders a config the scheduler accepts with the spec's defaults, a valid ctl and a monit process", func() {
		dst, err := renderScheduler(nil)
		Expect(err).NotTo(HaveOccurred())
		cfg, err := schedule.LoadConfig(filepath.Join(dst, "config", "config.yml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg).To(Equal(schedule.Config{Schedule: "0 2 * * *", TimeZone: "UTC", MinInterval: "15m", BackupConfig: "/var/vcap/jobs/backup/config/config.yml"}))
		Expect(exec.Command("bash", "-n", filepath.Join(dst, "bin", "ctl")).CombinedOutput()).To(BeEmpty(), "bin/ctl must be valid bash")
		monit, err := os.ReadFile(filepath.Join(jobsDir, "scheduler", "monit"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(monit)).To(ContainSubstring("check process scheduler\n  with pidfile /var/vcap/sys/run/scheduler/scheduler.pid"))

		dst, err = renderScheduler(map[string]any{"schedule": "@every 6h", "time_zone": "America/New_York"})
		Expect(err).NotTo(HaveOccurred())
		cfg, err = schedule.LoadConfig(filepath.Join(dst, "config", "config.yml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Schedule).To(Equal("@every 6h"))
		Expect(cfg.TimeZone).To(Equal("America/New_York"))
	})

	DescribeTable("fails at render time on a schedule or time zone it cannot read",
		func(props map[string]any, want string) {
			_, err := renderScheduler(props)
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("six fields", map[string]any{"schedule": "0 0 2 * * *"}, `must have 5 fields`),
		Entry("empty", map[string]any{"schedule": ""}, "schedule must be a cron expression"),
		Entry("a path as time zone", map[string]any{"time_zone": "../../etc/passwd"}, "must be an IANA time zone name"),
		Entry("30 February", map[string]any{"schedule": "0 0 30 2 *"}, `scheduler: schedule "0 0 30 2 *" never fires`),
		Entry("31 April, June, September or November", map[string]any{"schedule": "0 2 31 apr,jun,sep,nov *"}, "never fires"),
		Entry("every 5 minutes", map[string]any{"schedule": "*/5 * * * *"}, `scheduler: schedule "*/5 * * * *" runs as often as every 5 minutes: more often than min_interval (15m)`),
		Entry("minutes 10 apart across consecutive hours", map[string]any{"schedule": "5,55 1-2 * * *"}, "runs as often as every 10 minutes"),
		Entry("@every 1s", map[string]any{"schedule": "@every 1s"}, `runs as often as every 1 seconds: more often than min_interval (15m)`),
		Entry("@every 14m59s", map[string]any{"schedule": "@every 14m59s"}, "more often than min_interval (15m)"),
		Entry("an unknown descriptor", map[string]any{"schedule": "@fortnightly"}, `schedule "@fortnightly" is not a descriptor`),
		Entry("a minute out of range", map[string]any{"schedule": "60 2 * * *"}, `schedule "60 2 * * *": minute field "60"`),
		Entry("every 5 minutes under min_interval 10m", map[string]any{"schedule": "*/5 * * * *", "min_interval": "10m"}, "more often than min_interval (10m)"),
		Entry("a min_interval above 15m", map[string]any{"min_interval": "1h"}, `scheduler: min_interval "1h" must be a duration from 1s to 15m`),
		Entry("a min_interval that is no duration", map[string]any{"min_interval": 60}, "must be a duration from 1s to 15m"),
		Entry("a run_timeout that is no duration", map[string]any{"run_timeout": "6 hours"}, `scheduler: run_timeout "6 hours" must be a duration`),
	)

	DescribeTable("renders a schedule that fires no more often than min_interval, and the scheduler accepts it",
		func(props map[string]any) {
			dst, err := renderScheduler(props)
			Expect(err).NotTo(HaveOccurred())
			_, err = schedule.LoadConfig(filepath.Join(dst, "config", "config.yml"))
			Expect(err).NotTo(HaveOccurred())
		},
		Entry("29 February", map[string]any{"schedule": "0 0 29 feb *"}),
		Entry("30 February or a Monday in February", map[string]any{"schedule": "0 0 30 2 MON"}),
		Entry("twice an hour", map[string]any{"schedule": "0,30 * * * *"}),
		Entry("10 minutes apart in one hour only", map[string]any{"schedule": "0,50 2 * * *"}),
		Entry("@every 1h30m", map[string]any{"schedule": "@every 1h30m"}),
		Entry("@weekly", map[string]any{"schedule": "@weekly"}),
		Entry("every 5 minutes under min_interval 5m, with a run_timeout", map[string]any{"schedule": "*/5 * * * *", "min_interval": "5m", "run_timeout": "4m"}),
		Entry("@every 1s under min_interval 1s (the lab's)", map[string]any{"schedule": "@every 1s", "min_interval": "1s"}),
	)
})
