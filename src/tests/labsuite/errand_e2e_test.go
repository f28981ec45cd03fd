package labsuite_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"filippo.io/age"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	yaml "go.yaml.in/yaml/v2"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/lab/jobrender"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/objectstore"
)

// writeJumpboxDeployment makes a lab deployment from the release's own
// manifest: jumpbox-deployment's jumpbox (stand-in) with
// manifests/ops/colocate-on-jumpbox.yml, interpolated by the real bosh CLI,
// and the release's jobs and the built bbr as its package. ops are
// manifests/ops names, or a spec's own ops file by its absolute path.
func writeJumpboxDeployment(root string, vars map[string]any, ops ...string) string {
	dir := filepath.Join(GinkgoT().TempDir(), "jumpbox")
	raw, err := yaml.Marshal(vars)
	Expect(err).NotTo(HaveOccurred())
	varsFile := filepath.Join(GinkgoT().TempDir(), "vars.yml")
	Expect(os.WriteFile(varsFile, raw, 0o600)).To(Succeed())
	args := []string{"int", filepath.Join(root, "src", "tests", "release", "testdata", "jumpbox.yml"), "--vars-file", varsFile, "--var-errs", "--var-errs-unused"}
	for _, o := range append([]string{"colocate-on-jumpbox"}, ops...) {
		if !filepath.IsAbs(o) { // a spec's own ops file is given by its path
			o = filepath.Join(root, "manifests", "ops", o+".yml")
		}
		args = append(args, "-o", o)
	}
	manifest := runIn("", nil, boshBin, args...).expectSuccess().out
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest), 0o644)).To(Succeed())
	for _, job := range []string{"backup", "restore", "scheduler"} {
		Expect(copyTree(filepath.Join(root, "jobs", job), filepath.Join(dir, "releases", "bbr", "jobs", job))).To(Succeed())
	}
	pkg := filepath.Join(dir, "releases", "bbr", "packages", "bbr", "bin")
	Expect(os.MkdirAll(pkg, 0o755)).To(Succeed())
	raw, err = os.ReadFile(bbrBin)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(filepath.Join(pkg, "bbr"), raw, 0o755)).To(Succeed())
	// The jumpbox's own job (os-conf's user_add) as a lab job.
	Expect(os.MkdirAll(filepath.Join(dir, "releases", "os-conf", "jobs", "user_add", "bin"), 0o755)).To(Succeed())
	return dir
}

// writeSmallDeployment is a one-instance deployment that backs up and
// restores /var/vcap/store/data.
func writeSmallDeployment() string {
	return writeDeployment("small", 1, map[string]string{
		"backup":  `cp /var/vcap/store/data "${BBR_ARTIFACT_DIRECTORY}data"`,
		"restore": `cp "${BBR_ARTIFACT_DIRECTORY}data" /var/vcap/store/data`,
	})
}

// jumpboxVars are the manifest variables of a jumpbox whose errands back
// up sample and small, plus extra. The lab resolves ((lab_director_*)) as
// a config server would: the errands talk to the lab's own Director.
func jumpboxVars(extra map[string]any) map[string]any {
	vars := map[string]any{
		"director_url": "((lab_director_url))", "director_ca_cert": "((lab_director_ca_cert))",
		"bbr_client": "((lab_director_client))", "bbr_client_secret": "((lab_director_client_secret))",
		"deployments": []string{"sample", "small"}, "restore_deployment": "sample",
	}
	maps.Copy(vars, extra)
	return vars
}

// renderJob renders the release's job on inst again with props, as a
// redeploy with them would.
func renderJob(root string, inst model.Instance, deployment, job string, props map[string]any) {
	Expect(jobrender.Render(filepath.Join(root, "jobs", job), filepath.Join(inst.Root, "jobs", job), jobrender.For(deployment, inst), props)).To(Succeed())
}

// renderedDirector is the director properties inst's backup job was
// rendered with: the lab's, resolved.
func renderedDirector(inst model.Instance) map[string]any {
	var rendered struct {
		Director map[string]any `yaml:"director"`
	}
	raw, err := os.ReadFile(filepath.Join(inst.Root, "jobs", "backup", "config", "config.yml"))
	Expect(err).NotTo(HaveOccurred())
	Expect(yaml.Unmarshal(raw, &rendered)).To(Succeed())
	return rendered.Director
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), raw, info.Mode())
	})
}

var _ = Describe("the backup and restore errands on a jumpbox", Ordered, func() {
	var jumpbox string // the jumpbox instance's /var/vcap

	BeforeAll(func() {
		if boshBin == "" {
			Skip("BBR_TEST_BIN is not set: scripts/test builds the bosh CLI there")
		}
		root, err := filepath.Abs(filepath.Join("..", "..", ".."))
		Expect(err).NotTo(HaveOccurred())
		labUp("basic", "sample", writeSmallDeployment(), writeJumpboxDeployment(root, jumpboxVars(nil)))
		jumpbox = instance("jumpbox", "jumpbox", 0).Root
	})

	It("backs up both siblings onto the jumpbox's disk, then restores one with its data", func() {
		redis0 := instance("sample", "redis", 0)
		for k := 0; k < 20; k++ {
			redis(redis0, fmt.Sprintf("SET errand-key-%d value-%d", k, k))
		}
		Expect(os.WriteFile(filepath.Join(instance("small", "worker", 0).Root, "store", "data"), []byte("small data\n"), 0o644)).To(Succeed())

		r := run(labBin, "run-errand", "--dir", labDir, "jumpbox", "backup").expectSuccess()
		Expect(r.out).To(MatchRegexp(`sample\s+ok\s+`))
		Expect(r.out).To(MatchRegexp(`small\s+ok\s+`))
		for _, dep := range []string{"sample", "small"} {
			arts, _ := filepath.Glob(filepath.Join(jumpbox, "store", "bbr", "artifacts", dep, dep+"_*Z"))
			Expect(arts).To(HaveLen(1), dep)
			a, err := artifact.Open(arts[0])
			Expect(err).NotTo(HaveOccurred())
			Expect(artifact.Verify(context.Background(), a)).To(Succeed())
		}
		Expect(filepath.Join(jumpbox, "sys", "log", "backup", "backup.log")).To(BeAnExistingFile())
		Expect(labUsers()).To(BeEmpty())

		redis(redis0, "FLUSHALL")
		Expect(redis(redis0, "DBSIZE")).To(Equal("0"))
		r = run(labBin, "run-errand", "--dir", labDir, "jumpbox", "restore").expectSuccess()
		Expect(r.out).To(ContainSubstring("Restored sample from " + "/var/vcap/store/bbr/artifacts/sample/sample_"))
		Expect(redis(redis0, "GET errand-key-7")).To(Equal("value-7"))
		Expect(labUsers()).To(BeEmpty())
		Expect(stagingLeft("sample")).To(BeEmpty())
	})
})

var _ = Describe("the errands with manifests/ops/s3-destination.yml and encryption.yml", Ordered, func() {
	var (
		s3      *objectstore.Server
		jumpbox string
		key     *age.X25519Identity
	)

	BeforeAll(func() {
		if boshBin == "" {
			Skip("BBR_TEST_BIN is not set: scripts/test builds the bosh CLI there")
		}
		s3 = startObjectStore()
		root, err := filepath.Abs(filepath.Join("..", "..", ".."))
		Expect(err).NotTo(HaveOccurred())
		key, err = age.GenerateX25519Identity()
		Expect(err).NotTo(HaveOccurred())
		vars := jumpboxVars(map[string]any{"keep_last": 1,
			"s3_bucket": "backups", "s3_prefix": "foundation-1", "s3_endpoint": s3.Endpoint, "s3_region": "us-east-1",
			"s3_access_key_id": s3.AccessKey, "s3_secret_access_key": s3.SecretKey,
			"backup_encryption_recipients": []string{key.Recipient().String()}, "backup_encryption_identity": key.String(),
		})
		labUp("basic", "sample", writeSmallDeployment(), writeJumpboxDeployment(root, vars, "retention", "s3-destination", "encryption", "encryption-identity"))
		jumpbox = instance("jumpbox", "jumpbox", 0).Root
	})

	It("backs up two deployments into the bucket encrypted, with retention, using no disk, then restores one from it", func() {
		redis0 := instance("sample", "redis", 0)
		redis(redis0, "SET errand-bucket-key kept")
		Expect(os.WriteFile(filepath.Join(instance("small", "worker", 0).Root, "store", "data"), []byte("small data\n"), 0o644)).To(Succeed())

		for i := 0; i < 2; i++ {
			if i == 1 {
				awaitNextSecond()
			}
			r := run(labBin, "run-errand", "--dir", labDir, "jumpbox", "backup").expectSuccess()
			Expect(r.out).To(MatchRegexp(`sample\s+ok\s+.*s3://backups/foundation-1/sample_`))
			Expect(r.out).To(MatchRegexp(`small\s+ok\s+`))
			Expect(r.out).NotTo(ContainSubstring(s3.SecretKey))
			Expect(r.out).To(MatchRegexp(`Validated sample_\d{8}T\d{6}Z at s3://backups/foundation-1: every file is there and its stored bytes match`), "validate_after_backup: auto, with no identity")
			Expect(r.out).NotTo(ContainSubstring("AGE-SECRET-KEY"))
			if i == 1 {
				Expect(r.out).To(ContainSubstring("Retention: removed sample_"))
			}
		}
		Expect(backupsIn(s3, "foundation-1/")).To(ConsistOf(HavePrefix("sample_"), HavePrefix("small_")), "keep_last: 1")
		for _, k := range objects(s3, "foundation-1/") {
			Expect(k).To(Or(HaveSuffix("/metadata"), HaveSuffix(".tar.zst.age")), "every tar compressed and encrypted")
		}
		Expect(unfinishedUploads(s3)).To(BeEmpty())
		local, _ := filepath.Glob(filepath.Join(jumpbox, "store", "bbr", "artifacts", "[^.]*", "*"))
		Expect(local).To(BeEmpty(), "a bucket-only errand keeps no backup on the persistent disk")
		Expect(filepath.Join(jumpbox, "store", "bbr", "artifacts", ".reports", "last-run.json")).To(BeARegularFile(), "only its run reports")
		Expect(filepath.Join(jumpbox, "store", "bbr", "metrics", "bbr_deployment_sample.prom")).To(BeARegularFile())

		redis(redis0, "FLUSHALL")
		r := run(labBin, "run-errand", "--dir", labDir, "jumpbox", "restore").expectSuccess()
		Expect(r.out).To(ContainSubstring("Restored sample from s3://backups/foundation-1/sample_"), "with the identity encryption-identity.yml gives")
		Expect(redis(redis0, "GET errand-bucket-key")).To(Equal("kept"))
		Expect(labUsers()).To(BeEmpty())
		Expect(stagingLeft("sample")).To(BeEmpty())
	})
})
