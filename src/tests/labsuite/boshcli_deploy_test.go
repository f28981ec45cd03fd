package labsuite_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	yaml "go.yaml.in/yaml/v2"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/lab/model"
)

// testDirectorKey is an SSH private key (PEM) and a host key line, for
// manifests/ops/backup-director.yml.
func testDirectorKey() (string, string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	sshPub, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	return string(pem.EncodeToMemory(block)), string(ssh.MarshalAuthorizedKey(sshPub))
}

// osConfRelease is a stand-in for os-conf: a release with its user_add job
// (no templates), for jumpbox-deployment's manifest.
func osConfRelease() string {
	pack := func(files map[string]string) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for name, body := range files {
			Expect(tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})).To(Succeed())
			_, err := tw.Write([]byte(body))
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(tw.Close()).To(Succeed())
		Expect(zw.Close()).To(Succeed())
		return buf.Bytes()
	}
	job := pack(map[string]string{"./job.MF": "name: user_add\ntemplates: {}\npackages: []\nproperties:\n  users: {description: users to add}\n", "./monit": ""})
	sum := sha256.Sum256(job)
	manifest := fmt.Sprintf("name: os-conf\nversion: \"22.2.1\"\ncommit_hash: 0000000\nuncommitted_changes: false\n"+
		"jobs:\n- {name: user_add, version: u1, fingerprint: u1, sha1: \"sha256:%s\"}\npackages: []\n", hex.EncodeToString(sum[:]))
	path := filepath.Join(GinkgoT().TempDir(), "os-conf.tgz")
	Expect(os.WriteFile(path, pack(map[string]string{"./release.MF": manifest, "./jobs/user_add.tgz": string(job)}), 0o644)).To(Succeed())
	return path
}

// tamperRelease copies the release tarball with release.MF giving the
// backup job another digest, and returns the copy's path.
func tamperRelease(tarball string) string {
	in, err := os.Open(tarball)
	Expect(err).NotTo(HaveOccurred())
	defer in.Close()
	gz, err := gzip.NewReader(in)
	Expect(err).NotTo(HaveOccurred())
	tr := tar.NewReader(gz)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		Expect(err).NotTo(HaveOccurred())
		body, err := io.ReadAll(tr)
		Expect(err).NotTo(HaveOccurred())
		if strings.TrimPrefix(hdr.Name, "./") == "release.MF" {
			var m map[string]any
			Expect(yaml.Unmarshal(body, &m)).To(Succeed())
			for _, j := range m["jobs"].([]any) {
				job := j.(map[any]any)
				if job["name"] == "backup" {
					job["sha1"] = "sha256:" + strings.Repeat("0", 64)
				}
			}
			body, err = yaml.Marshal(m)
			Expect(err).NotTo(HaveOccurred())
			hdr.Size = int64(len(body))
		}
		Expect(tw.WriteHeader(hdr)).To(Succeed())
		_, err = tw.Write(body)
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(tw.Close()).To(Succeed())
	Expect(zw.Close()).To(Succeed())
	path := filepath.Join(GinkgoT().TempDir(), "tampered.tgz")
	Expect(os.WriteFile(path, buf.Bytes(), 0o644)).To(Succeed())
	return path
}

var _ = Describe("the operator's path with the real bosh CLI: upload-release, deploy, run-errand", Ordered, func() {
	var (
		root, tarball, work string
		vars                map[string]any
	)

	bosh := func(args ...string) result {
		return runIn(work, bbrEnv(""), boshBin, append([]string{"-n"}, args...)...)
	}
	varsFile := func(extra map[string]any) string {
		all := map[string]any{}
		for k, v := range vars {
			all[k] = v
		}
		for k, v := range extra {
			all[k] = v
		}
		raw, err := yaml.Marshal(all)
		Expect(err).NotTo(HaveOccurred())
		path := filepath.Join(GinkgoT().TempDir(), "vars.yml")
		Expect(os.WriteFile(path, raw, 0o600)).To(Succeed())
		return path
	}
	deploy := func(extra map[string]any, ops ...string) result {
		args := []string{"-d", "bbr", "deploy", filepath.Join(root, "manifests", "bbr.yml"), "--vars-file", varsFile(extra)}
		for _, o := range ops {
			args = append(args, "-o", filepath.Join(root, "manifests", "ops", o+".yml"))
		}
		return bosh(args...)
	}
	jumpbox := func() model.Instance {
		d, err := model.Load(labDir)
		Expect(err).NotTo(HaveOccurred())
		dep, ok := d.Find("bbr")
		Expect(ok).To(BeTrue(), "lab.json lists the deployed bbr")
		Expect(dep.Instances).To(HaveLen(1))
		return dep.Instances[0]
	}

	BeforeAll(func() {
		tarball = os.Getenv("BBR_RELEASE_TARBALL")
		if boshBin == "" || tarball == "" {
			Skip("BBR_TEST_BIN and BBR_RELEASE_TARBALL are not set: scripts/test builds the bosh CLI and the dev release there")
		}
		var err error
		root, err = filepath.Abs(filepath.Join("..", "..", ".."))
		Expect(err).NotTo(HaveOccurred())
		// The release compiles once per package version, across runs.
		GinkgoT().Setenv("BBR_LAB_COMPILE_CACHE", filepath.Join(filepath.Dir(boshBin), "_compiled-packages")) // "_": no Go package under it for ./...
		labUp("basic", "sample")
		vars = jumpboxVars(map[string]any{"deployments": []string{"sample"}, "restore_deployment": "sample",
			"deployment_name": "bbr", "az": "z1", "vm_type": "default", "persistent_disk_type": "10GB", "network": "default"})
	})

	BeforeEach(func() { work = GinkgoT().TempDir() })

	AfterEach(func() {
		Expect(labUsers()).To(BeEmpty(), "every SSH user bbr asked for is removed")
		Expect(stagingLeft("sample")).To(BeEmpty())
	})

	It("uploads the dev release, lists it, and takes it again as a no-op", func() {
		r := bosh("upload-release", tarball).expectSuccess()
		Expect(r.out).To(ContainSubstring("Extracting release"))
		version := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(root, "VERSION")))))
		r = bosh("releases").expectSuccess()
		Expect(r.out).To(MatchRegexp(`(?m)^bbr\s+\S*` + strings.ReplaceAll(version, ".", `\.`)))
		bosh("upload-release", tarball).expectSuccess()
	})

	It("refuses a tarball whose release.MF lies about a job's digest", func() {
		r := bosh("upload-release", tamperRelease(tarball))
		Expect(r.code).To(Equal(1))
		Expect(r.out + r.err).To(MatchRegexp(`Expected stream to have digest 'sha256:0{64}' but was 'sha256:[0-9a-f]{64}'`))
	})

	It("deploys manifests/bbr.yml: compiled packages, rendered templates, a persistent disk; lists it, its instances, manifest and errands", func() {
		r := deploy(nil).expectSuccess()
		Expect(r.out).To(ContainSubstring("Compiling packages"))
		Expect(r.out).To(ContainSubstring("Updating instance"))
		Expect(bosh("deployments").expectSuccess().out).To(MatchRegexp(`(?m)^bbr\s+bbr/`))
		inst := jumpbox()
		Expect(bosh("-d", "bbr", "instances").expectSuccess().out).To(ContainSubstring("jumpbox/" + inst.ID))
		Expect(bosh("-d", "bbr", "manifest").expectSuccess().out).To(ContainSubstring("name: bbr"))
		errands := bosh("-d", "bbr", "errands").expectSuccess().out
		Expect(errands).To(MatchRegexp(`(?m)^backup\s*$`))
		Expect(errands).To(MatchRegexp(`(?m)^restore\s*$`))
		Expect(filepath.Join(inst.Root, "packages", "bbr", "bin", "bbr")).To(BeARegularFile(), "the compiled package")
		cfg := string(must(os.ReadFile(filepath.Join(inst.Root, "jobs", "backup", "config", "config.yml"))))
		Expect(cfg).To(ContainSubstring(`"keep_last": 7`))
		Expect(cfg).To(ContainSubstring(`"url": "https://`+lab.Director.Address+`"`), "((lab_director_url)) resolved as a config server would")
	})

	It("backs up and restores with bosh run-errand, the data checked", func() {
		redis0 := instance("sample", "redis", 0)
		for k := 0; k < 10; k++ {
			redis(redis0, fmt.Sprintf("SET deployed-key-%d value-%d", k, k))
		}
		r := bosh("-d", "bbr", "run-errand", "backup").expectSuccess()
		Expect(r.out).To(MatchRegexp(`sample\s+ok\s+`))
		redis(redis0, "FLUSHALL")
		r = bosh("-d", "bbr", "run-errand", "restore").expectSuccess()
		Expect(r.out).To(ContainSubstring("Restored sample from /var/vcap/store/bbr/artifacts/sample/sample_"))
		Expect(redis(redis0, "GET deployed-key-7")).To(Equal("value-7"))
	})

	It("redeploys with every ops-file: re-rendered with the new properties, the same instance, the disk's backups kept", func() {
		before := jumpbox()
		backups := must(filepath.Glob(filepath.Join(before.Root, "store", "bbr", "artifacts", "sample", "sample_*")))
		Expect(backups).To(HaveLen(1))
		key, hostKeys := testDirectorKey()
		id := must(age.GenerateX25519Identity())
		r := deploy(map[string]any{
			"keep_last": 3, "bbr_uaa_client": "((lab_director_client))", "bbr_uaa_client_secret": "((lab_director_client_secret))",
			"s3_bucket": "backups", "s3_prefix": "bbr", "s3_endpoint": "https://127.0.0.1:9", "s3_region": "us-east-1",
			"s3_access_key_id": "key", "s3_secret_access_key": "secret",
			"backup_encryption_recipients": []string{id.Recipient().String()},
			"backup_encryption_identity":   id.String(),
			"backup_schedule":              "0 2 * * *", "backup_time_zone": "UTC",
			"bosh_director_host": "127.0.0.1", "bosh_director_ssh_user": "bbr", "bosh_director_ssh_key": key, "bosh_director_host_keys": hostKeys,
		}, "uaa-client", "all-deployments", "retention", "s3-destination", "encryption", "encryption-identity", "schedule", "backup-director").expectSuccess()
		Expect(r.out).To(ContainSubstring("Updating instance"))
		after := jumpbox()
		Expect(after.ID).To(Equal(before.ID))
		Expect(after.IP).To(Equal(before.IP))
		Expect(must(filepath.Glob(filepath.Join(after.Root, "store", "bbr", "artifacts", "sample", "sample_*")))).To(Equal(backups))
		cfg := string(must(os.ReadFile(filepath.Join(after.Root, "jobs", "backup", "config", "config.yml"))))
		Expect(cfg).To(ContainSubstring(`"keep_last": 3`))
		Expect(cfg).To(ContainSubstring(`"all_deployments": true`))
		Expect(cfg).To(ContainSubstring(`"bucket": "backups"`))
		Expect(filepath.Join(after.Root, "jobs", "scheduler", "bin", "ctl")).To(BeARegularFile())
		Expect(bosh("-d", "bbr", "errands").expectSuccess().out).NotTo(ContainSubstring("scheduler"), "a job without bin/run is no errand")
	})

	It("fails a deploy whose manifest leaves a variable the config server does not have, changing nothing", func() {
		before := jumpbox()
		path := varsFile(nil)
		raw := string(must(os.ReadFile(path)))
		Expect(os.WriteFile(path, []byte(strings.ReplaceAll(raw, "bbr_client_secret:", "unused_secret:")), 0o600)).To(Succeed())
		r := bosh("-d", "bbr", "deploy", filepath.Join(root, "manifests", "bbr.yml"), "--vars-file", path)
		Expect(r.code).To(Equal(1))
		Expect(r.out + r.err).To(ContainSubstring("Failed to find variable '/bbr-lab/bbr/bbr_client_secret' from config server"))
		Expect(jumpbox()).To(Equal(before), "the running instance is left as it was")
	})

	It("fails a redeploy whose templates refuse a property, before it stops the running instance", func() {
		before := jumpbox()
		r := deploy(map[string]any{"keep_last": -1}, "retention")
		Expect(r.code).To(Equal(1))
		Expect(r.out + r.err).To(ContainSubstring("keep_last must be a whole number, 0 or more (got -1)"))
		Expect(jumpbox()).To(Equal(before))
		run(labBin, "status", "--dir", labDir).expectSuccess() // its sshd still up
	})

	It("deletes the deployment: gone from the Director and the lab, its instance stopped", func() {
		inst := jumpbox()
		bosh("-d", "bbr", "delete-deployment").expectSuccess()
		Expect(bosh("deployments").expectSuccess().out).NotTo(MatchRegexp(`(?m)^bbr\s`))
		d, err := model.Load(labDir)
		Expect(err).NotTo(HaveOccurred())
		_, ok := d.Find("bbr")
		Expect(ok).To(BeFalse())
		Expect(inst.Root).NotTo(BeADirectory())
		r := bosh("-d", "bbr", "instances")
		Expect(r.code).To(Equal(1))
		Expect(r.out + r.err).To(ContainSubstring("Deployment 'bbr' doesn't exist"))
	})

	It("runs a tile's colocated post-deploy errand on the instance group a tile's job type makes", func() {
		manifest := `name: p-bbr-0123456789abcdef
releases: [{name: bbr, version: latest}]
stemcells: [{alias: default, os: ubuntu-jammy, version: latest}]
update: {canaries: 1, max_in_flight: 1, canary_watch_time: 1000-60000, update_watch_time: 1000-60000}
instance_groups:
- name: bbr
  instances: 1
  azs: [z1]
  vm_type: default
  persistent_disk_type: "51200"
  stemcell: default
  networks: [{name: default}]
  jobs:
  - name: backup
    release: bbr
    properties:
      director: {url: ((lab_director_url)), ca_cert: ((lab_director_ca_cert)), client: ((lab_director_client)), client_secret: ((lab_director_client_secret))}
      all_deployments: true
      keep_last: 7
  - name: restore
    release: bbr
    properties:
      director: {url: ((lab_director_url)), ca_cert: ((lab_director_ca_cert)), client: ((lab_director_client)), client_secret: ((lab_director_client_secret))}
      restore: {deployment: ""}
`
		path := filepath.Join(work, "tile.yml")
		Expect(os.WriteFile(path, []byte(manifest), 0o644)).To(Succeed())
		// Ops Manager interpolates its own values; the lab's Director
		// resolves the ((lab_director_*)) ones, so none is given here.
		bosh("-d", "p-bbr-0123456789abcdef", "deploy", path).expectSuccess()
		r := bosh("-d", "p-bbr-0123456789abcdef", "run-errand", "backup", "--instance", "bbr/0").expectSuccess()
		Expect(r.out).To(MatchRegexp(`sample\s+ok\s+`))
		Expect(r.out).To(ContainSubstring("Leaving out p-bbr-0123456789abcdef: it is this errand's own deployment"), "it has no backup scripts")
		r = bosh("-d", "p-bbr-0123456789abcdef", "run-errand", "restore")
		Expect(r.code).To(Equal(1))
		Expect(r.out).To(ContainSubstring("restore.deployment is required"))
		bosh("-d", "p-bbr-0123456789abcdef", "delete-deployment").expectSuccess()
	})

	It("deploys jumpbox-deployment's jumpbox with the errands colocated, and runs them", func() {
		bosh("upload-release", osConfRelease()).expectSuccess()
		r := bosh("-d", "jumpbox", "deploy", filepath.Join(root, "src", "tests", "release", "testdata", "jumpbox.yml"),
			"-o", filepath.Join(root, "manifests", "ops", "colocate-on-jumpbox.yml"), "--vars-file", varsFile(nil)).expectSuccess()
		Expect(r.out).To(ContainSubstring("Updating instance: jumpbox"))
		errands := bosh("-d", "jumpbox", "errands").expectSuccess().out
		Expect(errands).To(MatchRegexp(`(?m)^backup\s*$`))
		Expect(errands).NotTo(ContainSubstring("user_add"))
		r = bosh("-d", "jumpbox", "run-errand", "backup").expectSuccess()
		Expect(r.out).To(MatchRegexp(`sample\s+ok\s+`))
		bosh("-d", "jumpbox", "delete-deployment").expectSuccess()
	})
})
