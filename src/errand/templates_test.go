package errand_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/errand"
	"github.com/bbr-release/bbr/src/lab/jobrender"
)

// The release's job templates, rendered as the Director renders them (ERB
// through bosh-cli's Ruby renderer), must give a config the errand accepts.
var _ = Describe("the errand jobs' templates", func() {
	inst := jobrender.Instance{Deployment: "jumpbox", Group: "jumpbox", ID: "id", AZ: "z1", IP: "10.0.0.5", Bootstrap: true}
	director := map[any]any{"url": "https://10.0.0.6:25555", "client": "bbr-client", "client_secret": "s3cret"}

	render := func(job string, props map[string]any) (errand.Config, string, error) {
		dst := GinkgoT().TempDir()
		if err := jobrender.Render(filepath.Join("..", "..", "jobs", job), dst, inst, props); err != nil {
			return errand.Config{}, "", err
		}
		run, err := os.ReadFile(filepath.Join(dst, "bin", "run"))
		Expect(err).NotTo(HaveOccurred())
		cfg, err := errand.LoadConfig(filepath.Join(dst, "config", "config.yml"))
		Expect(err).NotTo(HaveOccurred(), "the rendered config must parse")
		return cfg, string(run), nil
	}

	It("backup: a list of deployments with the spec's defaults", func() {
		cfg, run, err := render("backup", map[string]any{"director": director, "deployments": []any{"cf", "redis"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Deployments).To(Equal([]string{"cf", "redis"}))
		Expect(cfg.Director.Client).To(Equal("bbr-client"))
		Expect(cfg.KeepLast).To(Equal(7))
		Expect(cfg.ArtifactDirectory).To(Equal("/var/vcap/store/bbr/artifacts"))
		Expect(cfg.CheckBackup()).To(Succeed())
		Expect(run).To(ContainSubstring("exec /var/vcap/packages/bbr/bin/bbr errand backup --config /var/vcap/jobs/backup/config/config.yml"))
		Expect(run).NotTo(ContainSubstring("s3cret"), "no secret on a command line")
	})

	It("backup: all deployments, UAA CA, retention and timeouts", func() {
		ca := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
		d := map[any]any{"url": "https://10.0.0.6:25555", "client": "c", "client_secret": "s", "ca_cert": ca}
		cfg, _, err := render("backup", map[string]any{"director": d, "all_deployments": true, "keep_last": 3,
			"script_timeout_seconds": 1800, "parallelism": 50, "artifact_directory": "/var/vcap/store/with space"})
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.AllDeployments).To(BeTrue())
		Expect(cfg.Director.CACert).To(Equal(ca))
		Expect(cfg.KeepLast).To(Equal(3))
		Expect(cfg.ScriptTimeout).To(Equal(1800))
		Expect(cfg.Parallelism).To(Equal(50))
		Expect(cfg.ArtifactDirectory).To(Equal("/var/vcap/store/with space"))
	})

	DescribeTable("backup: refuses invalid combinations at render time, saying what to fix",
		func(props map[string]any, want string) {
			_, _, err := render("backup", props)
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("no Director URL", map[string]any{"director": map[any]any{"client": "c", "client_secret": "s"}, "deployments": []any{"a"}}, "backup errand: director.url is required"),
		Entry("no secret", map[string]any{"director": map[any]any{"url": "https://d", "client": "c"}, "deployments": []any{"a"}}, "director.client and director.client_secret are required"),
		Entry("nothing to back up", map[string]any{"director": director}, "there is nothing to back up"),
		Entry("both lists", map[string]any{"director": director, "deployments": []any{"a"}, "all_deployments": true}, "not both"),
		Entry("negative retention", map[string]any{"director": director, "deployments": []any{"a"}, "keep_last": -1}, "keep_last must be a whole number"),
		Entry("lock-free for all", map[string]any{"director": director, "all_deployments": true, "unsafe_lock_free": true}, "unsafe_lock_free cannot be combined"),
	)

	It("restore: one named deployment, the newest backup unless one is named", func() {
		cfg, run, err := render("restore", map[string]any{"director": director, "restore": map[any]any{"deployment": "cf"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Restore.Deployment).To(Equal("cf"))
		Expect(cfg.Restore.Artifact).To(BeEmpty())
		Expect(cfg.CheckRestore()).To(Succeed())
		Expect(run).To(ContainSubstring("bbr errand restore --config /var/vcap/jobs/restore/config/config.yml"))

		_, _, err = render("restore", map[string]any{"director": director})
		Expect(err).To(MatchError(ContainSubstring("restore errand: restore.deployment is required")))
	})
})
