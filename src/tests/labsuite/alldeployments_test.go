package labsuite_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

// writeDeployment writes a lab deployment directory: one instance group
// of `instances` instances running one job with the given bbr scripts
// (bodies run under bash after `set -e`).
func writeDeployment(name string, instances int, scripts map[string]string) string {
	dir := filepath.Join(GinkgoT().TempDir(), name)
	for script, body := range scripts {
		path := filepath.Join(dir, "releases", name+"-release", "jobs", name+"-job", "bin", "bbr", script)
		Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
		Expect(os.WriteFile(path, []byte("#!/bin/bash\nset -e\n"+body+"\n"), 0o755)).To(Succeed())
	}
	manifest := "name: " + name + "\nreleases: [{name: " + name + "-release, version: \"1\"}]\n" +
		"instance_groups:\n- name: worker\n  instances: " + strconv.Itoa(instances) +
		"\n  azs: [z1]\n  jobs: [{name: " + name + "-job, release: " + name + "-release}]\n"
	Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest), 0o644)).To(Succeed())
	return dir
}

var _ = Describe("--all-deployments and --unsafe-lock-free", Ordered, func() {
	var workDir string

	BeforeAll(func() {
		// "small" fails its backup while /var/vcap/store/fail exists.
		small := writeDeployment("small", 1, map[string]string{
			"backup":  `[ ! -e /var/vcap/store/fail ]; echo data > "${BBR_ARTIFACT_DIRECTORY%/}/data"`,
			"restore": `cp "${BBR_ARTIFACT_DIRECTORY%/}/data" /var/vcap/store/restored`,
		})
		labUp("basic", "sample", small)
	})

	BeforeEach(func() { workDir = GinkgoT().TempDir() })

	AfterEach(func() {
		Expect(labUsers()).To(BeEmpty(), "every SSH user bbr asked for is removed")
		Expect(stagingLeft("sample")).To(BeEmpty())
		Expect(stagingLeft("small")).To(BeEmpty())
	})

	all := func(args ...string) result {
		return runIn(workDir, bbrEnv(""), bbrBin, append([]string{"deployment", "--all-deployments"}, args...)...)
	}

	It("backs up every deployment, with a log file each and upstream's summary", func() {
		r := all("backup", "--artifact-path", workDir).expectSuccess()
		Expect(r.out).To(ContainSubstring("Starting backup..."))
		Expect(r.out).To(MatchRegexp(`\[\d\d:\d\d:\d\d\] Pending: sample, small`))
		Expect(r.out).To(MatchRegexp(`\[\d\d:\d\d:\d\d\] Successfully backed up: (sample, small|small, sample)`))
		for _, dep := range []string{"sample", "small"} {
			Expect(r.out).To(ContainSubstring("Finished backup of " + dep))
			arts, _ := filepath.Glob(filepath.Join(workDir, dep+"_*Z"))
			Expect(arts).To(HaveLen(1), dep)
			art, err := artifact.Open(arts[0])
			Expect(err).NotTo(HaveOccurred())
			Expect(artifact.Verify(context.Background(), art)).To(Succeed())
			logs, _ := filepath.Glob(filepath.Join(workDir, dep+"_*Z.log"))
			Expect(logs).To(HaveLen(1), dep)
			info, err := os.Stat(logs[0])
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))
			raw, _ := os.ReadFile(logs[0])
			Expect(string(raw)).To(ContainSubstring("Backup created of " + dep))
		}
	})

	It("exits 1 naming the deployment that failed, prints its log, and still backs up the others", func() {
		flag := filepath.Join(instance("small", "worker", 0).Root, "store", "fail")
		Expect(os.WriteFile(flag, nil, 0o644)).To(Succeed())
		defer os.Remove(flag)
		r := all("backup", "--artifact-path", workDir)
		Expect(r.code).To(Equal(1))
		Expect(r.out).To(ContainSubstring("ERROR: failed to backup small"))
		Expect(r.out).To(ContainSubstring("Error backing up small-job on worker/"))
		Expect(r.err).To(ContainSubstring("Error attempting to run backup for job small-job"))
		Expect(r.out).To(ContainSubstring("Successfully backed up: sample"))
		Expect(r.out).To(ContainSubstring("FAILED: small"))
		Expect(r.err).To(ContainSubstring("1 out of 2 deployments cannot be backed up:\n  small\n"))
		Expect(r.err).To(ContainSubstring("Deployment 'small':"))
		arts, _ := filepath.Glob(filepath.Join(workDir, "sample_*Z"))
		Expect(arts).To(HaveLen(1))
		errLogs, _ := filepath.Glob(filepath.Join(workDir, "bbr-*.err.log"))
		Expect(errLogs).To(HaveLen(1))
	})

	It("checks every deployment with pre-backup-check", func() {
		r := all("pre-backup-check").expectSuccess()
		Expect(r.out).To(ContainSubstring("Deployment 'sample' can be backed up."))
		Expect(r.out).To(ContainSubstring("Deployment 'small' can be backed up."))
		Expect(r.out).To(ContainSubstring("Successfully can be backed up: "))
	})

	It("cleans up every deployment with backup-cleanup, logging in the working directory", func() {
		r := all("backup-cleanup").expectSuccess()
		Expect(r.out).To(ContainSubstring("Starting cleanup..."))
		Expect(r.out).To(ContainSubstring("Successfully cleaned up: "))
		logs, _ := filepath.Glob(filepath.Join(workDir, "*_*Z.log"))
		Expect(logs).To(HaveLen(2))
	})

	It("refuses restore and the flag combinations upstream refuses", func() {
		r := all("restore", "--artifact-path", workDir)
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("--all-deployments is supported only for pre-backup-check, backup and backup-cleanup"))

		r = all("backup", "--unsafe-lock-free")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("Cannot use the --unsafe-lock-free flag in conjunction with the --all-deployments flag"))

		r = runIn(workDir, bbrEnv("sample"), bbrBin, "deployment", "--all-deployments", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("provide one of '--deployment' or '--all-deployments' flags."))
		Expect(labUsers()).To(BeEmpty())
	})

	It("with --unsafe-lock-free backs up without running any lock or unlock script", func() {
		api := instance("sample", "api", 0)
		before := jobLog(api, "api")
		r := bbr(workDir, "sample", "deployment", "backup", "--unsafe-lock-free").expectSuccess()
		Expect(r.out).To(ContainSubstring("Skipping lock for deployment"))
		Expect(r.out).To(ContainSubstring("Skipping unlock after successful backup for deployment"))
		Expect(jobLog(api, "api")).To(Equal(before), "the API was never put into maintenance")
		art, err := artifact.Open(onlyDir(workDir))
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), art)).To(Succeed())
	})
})
