package labsuite_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

// contractJob is one lab job: its bbr scripts' bodies, by script name.
type contractJob map[string]string

// writeContractDeployment writes a deployment of instance groups (one
// instance each) whose jobs are given per group. Every job is in release
// r and every script runs under bash -e.
func writeContractDeployment(name string, groups map[string]map[string]contractJob) string {
	dir := filepath.Join(GinkgoT().TempDir(), name)
	var manifest strings.Builder
	fmt.Fprintf(&manifest, "name: %s\nreleases: [{name: r, version: \"1\"}]\ninstance_groups:\n", name)
	for _, group := range sortedNames(groups) {
		var jobs []string
		for _, job := range sortedNames(groups[group]) {
			jobs = append(jobs, fmt.Sprintf("{name: %s, release: r}", job))
			for script, body := range groups[group][job] {
				path := filepath.Join(dir, "releases", "r", "jobs", job, "bin", "bbr", script)
				Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
				Expect(os.WriteFile(path, []byte("#!/bin/bash\nset -e\n"+body+"\n"), 0o755)).To(Succeed())
			}
		}
		fmt.Fprintf(&manifest, "- {name: %s, instances: 1, azs: [z1], jobs: [%s]}\n", group, strings.Join(jobs, ", "))
	}
	Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest.String()), 0o644)).To(Succeed())
	return dir
}

func sortedNames[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// orderedJob logs each lock and unlock to /var/vcap/store/order.log and
// declares that it is locked before next (if any), for backup and restore.
func orderedJob(name, next string) contractJob {
	log := func(what string) string { return fmt.Sprintf("echo '%s %s' >> /var/vcap/store/order.log", what, name) }
	j := contractJob{
		"pre-backup-lock":     log("lock"),
		"post-backup-unlock":  log("unlock"),
		"pre-restore-lock":    log("restore-lock"),
		"post-restore-unlock": log("restore-unlock"),
		"backup": fmt.Sprintf(`echo "$BBR_ARTIFACT_DIRECTORY|$ARTIFACT_DIRECTORY" > /var/vcap/store/env-%[1]s
echo %[1]s > "${BBR_ARTIFACT_DIRECTORY}data"`, name),
		"restore":  fmt.Sprintf(`cp "${BBR_ARTIFACT_DIRECTORY}data" /var/vcap/store/restored-%s`, name),
		"metadata": fmt.Sprintf(`echo "$BBR_VERSION" > /var/vcap/store/version-%s`, name),
	}
	if next != "" {
		j["metadata"] += fmt.Sprintf("\necho 'backup_should_be_locked_before: [{job_name: %[1]s, release: r}]'\necho 'restore_should_be_locked_before: [{job_name: %[1]s, release: r}]'", next)
	}
	return j
}

var _ = Describe("the release-author script contract", Ordered, func() {
	var workDir string
	var ordered, many string // instance roots

	BeforeAll(func() {
		manyJobs := map[string]contractJob{}
		for i := 1; i <= 20; i++ {
			name := fmt.Sprintf("j%02d", i)
			manyJobs[name] = contractJob{
				"backup":  `head -c 1048576 /dev/urandom > "${BBR_ARTIFACT_DIRECTORY}blob"; cp "${BBR_ARTIFACT_DIRECTORY}blob" /var/vcap/store/` + name,
				"restore": `cmp "${BBR_ARTIFACT_DIRECTORY}blob" /var/vcap/store/` + name + ` && touch /var/vcap/store/` + name + `.restored`,
			}
		}
		contract := writeContractDeployment("contract", map[string]map[string]contractJob{
			"ordered": {
				"first":  orderedJob("first", "second"),
				"second": orderedJob("second", "third"),
				"third":  orderedJob("third", ""),
				// skip_bbr_scripts disables a job: its failing backup never runs.
				"off": {"metadata": "echo 'skip_bbr_scripts: true'", "backup": "exit 1"},
				// Upstream ignores the legacy cf-mysql job names.
				"mysql-backup": {"backup": "exit 1"},
			},
			"many": manyJobs,
		})
		named := writeContractDeployment("named", map[string]map[string]contractJob{
			"old": {"legacy": {
				"metadata": "echo 'backup_name: legacy-artifact'\necho 'restore_name: legacy-artifact'",
				"backup":   `echo x > "${BBR_ARTIFACT_DIRECTORY}x"`,
				"restore":  "touch /var/vcap/store/restored",
			}},
		})
		cyclic := writeContractDeployment("cyclic", map[string]map[string]contractJob{
			"g": {
				"a": {"metadata": "echo 'backup_should_be_locked_before: [{job_name: b, release: r}]'", "pre-backup-lock": "touch /var/vcap/store/locked-a", "backup": "true"},
				"b": {"metadata": "echo 'backup_should_be_locked_before: [{job_name: a, release: r}]'", "pre-backup-lock": "touch /var/vcap/store/locked-b", "backup": "true"},
				// A dependency on a job the deployment does not have is ignored.
				"c": {"metadata": "echo 'backup_should_be_locked_before: [{job_name: absent, release: r}]'", "backup": "true", "restore": "touch /var/vcap/store/restored"},
			},
		})
		labUp("basic", contract, named, cyclic)
		ordered, many = instance("contract", "ordered", 0).Root, instance("contract", "many", 0).Root
		workDir = GinkgoT().TempDir()
	})

	AfterEach(func() {
		Expect(labUsers()).To(BeEmpty())
		Expect(stagingLeft("contract")).To(BeEmpty())
		Expect(stagingLeft("named")).To(BeEmpty())
		Expect(stagingLeft("cyclic")).To(BeEmpty())
	})

	read := func(path string) string {
		raw, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		return string(raw)
	}

	var art string
	It("backs up in lock order, passes the contract's env, skips disabled and ignored jobs, drains 20 jobs", func() {
		bbr(workDir, "contract", "deployment", "backup").expectSuccess()
		art = onlyDir(workDir)
		Expect(read(filepath.Join(ordered, "store", "order.log"))).To(Equal(
			"lock first\nlock second\nlock third\nunlock third\nunlock second\nunlock first\n"))
		Expect(read(filepath.Join(ordered, "store", "env-first"))).To(Equal(
			"/var/vcap/store/bbr-backup/first/|/var/vcap/store/bbr-backup/first/\n"))
		Expect(read(filepath.Join(ordered, "store", "version-first"))).To(Equal("9.9.9-lab\n"))

		a, err := artifact.Open(art)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), a)).To(Succeed())
		var names []string
		entries, _ := os.ReadDir(art)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		Expect(names).To(ContainElements("ordered-0-first.tar", "ordered-0-second.tar", "ordered-0-third.tar", "many-0-j01.tar", "many-0-j20.tar"))
		Expect(names).NotTo(ContainElements("ordered-0-off.tar", "ordered-0-mysql-backup.tar"))
		Expect(names).To(HaveLen(3 + 20 + 1)) // + metadata
	})

	It("restores in restore lock order and puts every job's data back", func() {
		Expect(os.Remove(filepath.Join(ordered, "store", "order.log"))).To(Succeed())
		bbr(workDir, "contract", "deployment", "restore", "--artifact-path", art).expectSuccess()
		Expect(read(filepath.Join(ordered, "store", "order.log"))).To(Equal(
			"restore-lock first\nrestore-lock second\nrestore-lock third\nrestore-unlock third\nrestore-unlock second\nrestore-unlock first\n"))
		Expect(read(filepath.Join(ordered, "store", "restored-second"))).To(Equal("second\n"))
		for i := 1; i <= 20; i++ {
			Expect(filepath.Join(many, "store", fmt.Sprintf("j%02d.restored", i))).To(BeAnExistingFile())
		}
	})

	It("warns about discontinued backup_name on backup and refuses restore_name on restore before locking", func() {
		dir := GinkgoT().TempDir()
		r := bbr(dir, "named", "deployment", "backup").expectSuccess()
		Expect(r.out).To(ContainSubstring("discontinued metadata keys backup_name/restore_name found in job legacy. bbr will not be able to restore this backup artifact."))
		r = bbr(dir, "named", "deployment", "restore", "--artifact-path", onlyDir(dir))
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("restore_name"))
		Expect(filepath.Join(instance("named", "old", 0).Root, "store", "restored")).NotTo(BeAnExistingFile())
	})

	It("refuses a lock-order cycle before locking anything", func() {
		r := bbr(GinkgoT().TempDir(), "cyclic", "deployment", "backup")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("job locking dependency graph is cyclic: jobs [r/a r/b] depend on each other"))
		root := instance("cyclic", "g", 0).Root
		Expect(filepath.Join(root, "store", "locked-a")).NotTo(BeAnExistingFile())
		Expect(filepath.Join(root, "store", "locked-b")).NotTo(BeAnExistingFile())
	})

	It("refuses to restore an artifact into a deployment of another shape, before locking", func() {
		r := bbr(GinkgoT().TempDir(), "cyclic", "deployment", "restore", "--artifact-path", art)
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("Deployment 'cyclic' does not match the structure of the provided backup: it has no instance many/0"))
		Expect(filepath.Join(instance("cyclic", "g", 0).Root, "store", "restored")).NotTo(BeAnExistingFile())
	})
})
