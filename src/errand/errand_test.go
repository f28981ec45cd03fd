package errand_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/errand"
)

const validConfig = `
director: {url: "https://10.0.0.6:25555", client: admin, client_secret: s3cret}
deployments: [cf, redis]
keep_last: 2
`

var _ = Describe("the errand config", func() {
	It("applies the documented defaults", func() {
		c, err := errand.ParseConfig([]byte(validConfig))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.ArtifactDirectory).To(Equal(errand.DefaultArtifactDirectory))
		Expect(c.Parallelism).To(Equal(errand.DefaultParallelism))
		Expect(c.CheckBackup()).To(Succeed())
		Expect(c.CheckRestore()).To(MatchError(ContainSubstring("restore.deployment is required")))
	})

	It("names every mistake at once", func() {
		_, err := errand.ParseConfig([]byte(`{director: {url: "ftp://d"}, keep_last: -2, parallelism: 5000, in_progress_grace_hours: -1}`))
		Expect(err).To(MatchError(SatisfyAll(ContainSubstring("director.url"), ContainSubstring("no Director credentials"),
			ContainSubstring("keep_last"), ContainSubstring("parallelism"), ContainSubstring("in_progress_grace_hours"))))
	})

	It("takes a Director user instead of a UAA client, as bbr's --username/--password", func() {
		c, err := errand.ParseConfig([]byte(`director: {url: "https://d:25555", username: admin, password: pw}`))
		Expect(err).NotTo(HaveOccurred())
		id, secret := c.Director.Credentials()
		Expect([]string{id, secret}).To(Equal([]string{"admin", "pw"}))
		c, err = errand.ParseConfig([]byte(validConfig))
		Expect(err).NotTo(HaveOccurred())
		id, secret = c.Director.Credentials()
		Expect([]string{id, secret}).To(Equal([]string{"admin", "s3cret"}))
	})

	DescribeTable("takes the Director's address as the bosh CLI does",
		func(given, want string) {
			c, err := errand.ParseConfig([]byte(`director: {url: "` + given + `", client: a, client_secret: b}`))
			Expect(err).NotTo(HaveOccurred())
			Expect(c.Director.URL).To(Equal(want))
		},
		Entry("a full URL", "https://10.0.0.6:25555", "https://10.0.0.6:25555"),
		Entry("no port", "https://bosh.example.com", "https://bosh.example.com:25555"),
		Entry("a bare host", "10.0.0.6", "https://10.0.0.6:25555"),
		Entry("host and port", "10.0.0.6:443", "https://10.0.0.6:443"),
		Entry("IPv6", "https://[fd00::6]", "https://[fd00::6]:25555"),
		Entry("a trailing slash", "https://10.0.0.6:25555/", "https://10.0.0.6:25555"),
	)

	DescribeTable("names every mistake and what to do",
		func(config, want string) {
			_, err := errand.ParseConfig([]byte(config))
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("no URL", `director: {client: a, client_secret: b}`, "give the Director's https URL"),
		Entry("no credentials", `director: {url: "https://d:25555"}`, "no Director credentials: set director.client and director.client_secret"),
		Entry("a client without a secret", `director: {url: "https://d:25555", client: a}`, "director.client and director.client_secret are both required"),
		Entry("a user without a password", `director: {url: "https://d:25555", username: a}`, "director.username and director.password are both required"),
		Entry("a client and a user", `director: {url: "https://d:25555", client: a, client_secret: b, username: c, password: d}`, "not both"),
		Entry("an http URL", `director: {url: "http://d:25555", client: a, client_secret: b}`, "give the Director's https URL"),
		Entry("a URL with a path", `director: {url: "https://d:25555/x", client: a, client_secret: b}`, "give the Director's https URL"),
		Entry("a bad port", `director: {url: "d:99999", client: a, client_secret: b}`, "give the Director's https URL"),
		Entry("no parallelism", `{director: {url: "https://d:25555", client: a, client_secret: b}, parallelism: -1}`, "parallelism must be between 1 and 1000"),
		Entry("a negative script timeout", `{director: {url: "https://d:25555", client: a, client_secret: b}, script_timeout_seconds: -1}`, "script_timeout_seconds must be 0"),
		Entry("lock-free for all", `{director: {url: "https://d:25555", client: a, client_secret: b}, all_deployments: true, unsafe_lock_free: true}`, "unsafe_lock_free cannot be combined"),
		Entry("a bad restore deployment", `{director: {url: "https://d:25555", client: a, client_secret: b}, restore: {deployment: "a/b"}}`, `restore.deployment "a/b"`),
		Entry("a CA that is not PEM", `director: {url: "https://d:25555", client: a, client_secret: b, ca_cert: nope}`, "director.ca_cert must be a PEM certificate"),
		Entry("both lists", `{director: {url: "https://d:25555", client: a, client_secret: b}, deployments: [x], all_deployments: true}`, "not both"),
		Entry("a bad deployment name", `{director: {url: "https://d:25555", client: a, client_secret: b}, deployments: ["../x"]}`, `deployment name "../x"`),
		Entry("negative retention", `{director: {url: "https://d:25555", client: a, client_secret: b}, keep_last: -1}`, "keep_last must be 0"),
		Entry("a relative artifact directory", `{director: {url: "https://d:25555", client: a, client_secret: b}, artifact_directory: rel}`, "must be an absolute path"),
		Entry("an unknown key (a typo)", `{director: {url: "https://d:25555", client: a, client_secret: b}, keep_lsat: 3}`, "keep_lsat"),
		Entry("a restore artifact that is a path", `{director: {url: "https://d:25555", client: a, client_secret: b}, restore: {deployment: x, artifact: ../y}}`, "must be a backup's directory name"),
	)

	const director = `director: {url: "https://d:25555", client: a, client_secret: b}` + "\n"

	DescribeTable("refuses an artifact_directory that is not a folder of its own, saying what to set instead",
		func(dir, want string) {
			_, err := errand.ParseConfig([]byte(director + "artifact_directory: " + dir + "\n"))
			Expect(err).To(MatchError(SatisfyAll(ContainSubstring(fmt.Sprintf("artifact_directory %q", dir)), ContainSubstring(want),
				ContainSubstring("use a folder of its own on the persistent disk, e.g. /var/vcap/store/bbr/artifacts"))))
		},
		Entry("the root", "/", "is a system directory"),
		Entry("the root, spelt twice", "//", "is a system directory"),
		Entry("the persistent disk itself", "/var/vcap/store", "is a system directory"),
		Entry("the persistent disk, with a trailing slash", "/var/vcap/store/", "is a system directory"),
		Entry("the persistent disk, with a dot", "/var/vcap/store/.", "is a system directory"),
		Entry("/var/vcap", "/var/vcap", "is a system directory"),
		Entry("/tmp", "/tmp", "is a system directory"),
		Entry("/etc", "/etc", "is a system directory"),
		Entry("bbr's staging directory on backed-up VMs", "/var/vcap/store/bbr-backup/x", "is managed by BOSH or bbr"),
		Entry("a job's rendered templates", "/var/vcap/jobs/backup/backups", "is managed by BOSH or bbr"),
		Entry("the log directory", "/var/vcap/sys/log/backup", "is managed by BOSH or bbr"),
		Entry("a path with ..", "/var/vcap/store/bbr/../../..", `must not contain ".."`),
		Entry("a path that ends in ..", "/var/vcap/store/bbr/..", `must not contain ".."`),
	)

	DescribeTable("takes a folder of its own for artifact_directory",
		func(dir string) {
			c, err := errand.ParseConfig([]byte(director + "artifact_directory: " + dir + "\n"))
			Expect(err).NotTo(HaveOccurred())
			Expect(c.ArtifactDirectory).To(Equal(dir))
		},
		Entry("the default", "/var/vcap/store/bbr/artifacts"),
		Entry("another folder on the persistent disk", "/var/vcap/store/backups"),
		Entry("a name with dots", "/var/vcap/store/bbr..backups/.x"),
		Entry("a folder under /tmp (tests)", "/tmp/bbr-errand-test"),
	)

	It("refuses a CA that holds a private key, without repeating the key", func() {
		key := "-----BEGIN RSA PRIVATE KEY-----\\nMIIEsecretkeybytes\\n-----END RSA PRIVATE KEY-----\\n"
		_, err := errand.ParseConfig([]byte(`director: {url: "https://d:25555", client: a, client_secret: b, ca_cert: "` +
			`-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n` + key + `"}`))
		Expect(err).To(MatchError(ContainSubstring("director.ca_cert holds a private key: give only the CA's certificate")))
		Expect(err.Error()).NotTo(ContainSubstring("MIIEsecretkeybytes"))
	})
})

// backupNamed writes a good backup of dep at stamp under root (what bbr
// writes), or a failed one.
func backupNamed(root, dep string, stamp time.Time, good bool) string {
	dir, err := errand.Store{Root: root}.Dir(dep)
	Expect(err).NotTo(HaveOccurred())
	a, err := artifact.Create(dir, dep, stamp)
	Expect(err).NotTo(HaveOccurred())
	var failure error
	if !good {
		failure = errors.New("drain failed")
	}
	Expect(a.Finish(stamp, failure)).To(Succeed())
	return a.Path
}

var _ = Describe("the backup errand", func() {
	var (
		root    string
		out     bytes.Buffer
		clock   time.Time
		runner  errand.Runner
		backups []string
		failing map[string]bool
	)

	BeforeEach(func() {
		root = GinkgoT().TempDir()
		out.Reset()
		backups, failing = nil, map[string]bool{}
		clock = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
		cfg, err := errand.ParseConfig([]byte(validConfig + "artifact_directory: " + root + "\n"))
		Expect(err).NotTo(HaveOccurred())
		runner = errand.Runner{
			Config: cfg,
			Backup: func(_ context.Context, dep string, dest artifact.Destination) (string, error) {
				Expect(dest).To(Equal(artifact.Local{Dir: filepath.Join(root, dep)}))
				backups = append(backups, dep)
				clock = clock.Add(time.Minute)
				path := backupNamed(root, dep, clock, !failing[dep])
				if failing[dep] {
					return path, errors.New("Error attempting to run backup for job redis\nmore detail")
				}
				return path, nil
			},
			Out: &out,
			Now: func() time.Time { return clock },
		}
	})

	It("backs up each deployment, keeps the newest good backups and prints a summary", func() {
		for i := 0; i < 3; i++ {
			Expect(runner.RunBackup(context.Background())).To(Succeed())
		}
		Expect(backups).To(Equal([]string{"cf", "redis", "cf", "redis", "cf", "redis"}))
		entries, _ := os.ReadDir(filepath.Join(root, "cf"))
		Expect(entries).To(HaveLen(2), "keep_last: 2")
		Expect(entries[1].Name()).To(Equal("cf_20261125T080500Z"), "the newest stays")
		Expect(out.String()).To(ContainSubstring("Retention: removed cf_20261125T080100Z from " + filepath.Join(root, "cf")))
		Expect(out.String()).To(MatchRegexp(`cf\s+ok\s+\d\S*\s+\S+\s+\S+\s+` + filepath.Join(root, "cf", "cf_")))
	})

	It("fails when a deployment fails, never counts its artifact as a backup, and still backs up the others", func() {
		Expect(runner.RunBackup(context.Background())).To(Succeed())
		failing["cf"] = true
		for i := 0; i < 3; i++ {
			Expect(runner.RunBackup(context.Background())).To(MatchError("1 of 2 deployments failed: cf"))
		}
		Expect(out.String()).To(MatchRegexp(`cf\s+FAILED\s+-\s+\S+\s+-\s+Error attempting to run backup for job redis\n`))
		newest, err := artifact.Newest(context.Background(), artifact.Local{Dir: filepath.Join(root, "cf")}, "cf")
		Expect(err).NotTo(HaveOccurred())
		Expect(newest.Name).To(Equal("cf_20261125T080100Z"), "the only good one, kept although keep_last is 2 and newer failed ones exist")
		entries, _ := os.ReadDir(filepath.Join(root, "redis"))
		Expect(entries).To(HaveLen(2))

		failing["cf"] = false
		Expect(runner.RunBackup(context.Background())).To(Succeed())
		entries, _ = os.ReadDir(filepath.Join(root, "cf"))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		Expect(names).To(Equal([]string{"cf_20261125T080100Z", "cf_20261125T080900Z"}), "failed backups older than the newest good one are removed")
	})

	It("keeps a backup under its final name that it cannot read, and says so; removes an older one marked FAILED", func() {
		Expect(runner.RunBackup(context.Background())).To(Succeed())
		unreadable := filepath.Join(root, "cf", "cf_20261125T070000Z")
		Expect(os.MkdirAll(unreadable, 0o700)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(unreadable, "metadata"), []byte("from a newer bbr: [\n"), 0o600)).To(Succeed())
		marked := filepath.Join(root, "cf", "cf_20261125T070100Z")
		Expect(os.MkdirAll(marked, 0o700)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(marked, artifact.FailedFile), []byte("drain failed"), 0o600)).To(Succeed())

		for i := 0; i < 3; i++ {
			Expect(runner.RunBackup(context.Background())).To(Succeed())
		}
		Expect(unreadable).To(BeADirectory(), "it may be good: retention never removes it")
		Expect(marked).NotTo(BeADirectory())
		Expect(out.String()).To(ContainSubstring("Retention: kept cf_20261125T070000Z: it cannot be read ("))
		Expect(out.String()).To(ContainSubstring("Retention: removed cf_20261125T070100Z from " + filepath.Join(root, "cf")))
	})

	It("backs up every deployment the Director lists with all_deployments", func() {
		runner.Config.Deployments, runner.Config.AllDeployments = nil, true
		runner.Deployments = func(context.Context) ([]string, error) { return []string{"a", "b", "c"}, nil }
		Expect(runner.RunBackup(context.Background())).To(Succeed())
		Expect(backups).To(Equal([]string{"a", "b", "c"}))
	})
})

var _ = Describe("the restore errand", func() {
	It("restores the newest good backup, or the named one, and refuses without a deployment", func() {
		root := GinkgoT().TempDir()
		day := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
		first := backupNamed(root, "cf", day, true)
		newest := backupNamed(root, "cf", day.Add(time.Hour), true)
		backupNamed(root, "cf", day.Add(2*time.Hour), false)
		var restored []string
		r := errand.Runner{
			Config: errand.Config{ArtifactDirectory: root},
			Restore: func(_ context.Context, dep string, src artifact.Source) error {
				restored = append(restored, dep+" "+src.Location())
				return nil
			},
			Out: GinkgoWriter,
			Now: time.Now,
		}
		Expect(r.RunRestore(context.Background())).To(MatchError(ContainSubstring("never guesses")))
		r.Config.Restore.Deployment = "cf"
		Expect(r.RunRestore(context.Background())).To(Succeed())
		r.Config.Restore.Artifact = filepath.Base(first)
		Expect(r.RunRestore(context.Background())).To(Succeed())
		Expect(restored).To(Equal([]string{"cf " + newest, "cf " + first}))
		r.Config.Restore.Deployment = "redis"
		r.Config.Restore.Artifact = ""
		Expect(r.RunRestore(context.Background())).To(MatchError(ContainSubstring("no good backup of redis")))
	})
})
