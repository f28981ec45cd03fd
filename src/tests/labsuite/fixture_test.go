package labsuite_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

// The artifact upstream bbr v1.9.75 wrote (see its README).
var fixtureDir = filepath.Join("..", "..", "..", "testdata", "upstream-bbr-1.9.75")

// writeAccDeployment recreates the deployment the fixture came from: each
// job keeps its data in /var/vcap/store/<job>/data; backup copies it into
// the artifact dir, restore replaces it. Every script appends to orderLog
// on the host (outside /var/vcap, so shared by all instances).
func writeAccDeployment(orderLog string) string {
	dir := filepath.Join(GinkgoT().TempDir(), "acc")
	raw, err := os.ReadFile(filepath.Join(fixtureDir, "manifest.yml"))
	Expect(err).NotTo(HaveOccurred())
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), raw, 0o644)).To(Succeed())

	logLine := func(job, script string) string {
		return fmt.Sprintf("echo \"$(hostname) %s %s\" >> %s\n", job, script, orderLog)
	}
	lockScripts := []string{"pre-backup-lock", "post-backup-unlock", "pre-restore-lock", "post-restore-unlock"}
	jobs := map[string][]string{
		"store":  append([]string{"backup", "restore"}, lockScripts...),
		"cache":  {"backup", "restore"},
		"api":    append([]string{"backup", "restore", "metadata"}, lockScripts...),
		"worker": lockScripts,
	}
	for job, scripts := range jobs {
		for _, script := range scripts {
			body := logLine(job, script)
			switch script {
			case "backup":
				body += fmt.Sprintf("cp -a /var/vcap/store/%s/data/. \"$BBR_ARTIFACT_DIRECTORY\"\n", job)
			case "restore":
				body += fmt.Sprintf("rm -rf /var/vcap/store/%[1]s/data && mkdir -p /var/vcap/store/%[1]s/data && cp -a \"$BBR_ARTIFACT_DIRECTORY\". /var/vcap/store/%[1]s/data/\n", job)
			case "metadata":
				body = "cat <<'YAML'\nbackup_should_be_locked_before:\n- job_name: store\n  release: acc-release\nrestore_should_be_locked_before:\n- job_name: store\n  release: acc-release\nYAML\n"
			}
			path := filepath.Join(dir, "releases", "acc-release", "jobs", job, "bin", "bbr", script)
			Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
			Expect(os.WriteFile(path, []byte("#!/bin/bash\nset -euo pipefail\n"+body), 0o755)).To(Succeed())
		}
	}
	return dir
}

// storeFiles reads a job's data on an instance as name -> content.
func storeFiles(group string, index int, job string) map[string]string {
	root := filepath.Join(instance("acc", group, index).Root, "store", job, "data")
	files := map[string]string{}
	Expect(filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		rel, _ := filepath.Rel(root, path)
		files[rel] = string(raw)
		return err
	})).To(Succeed())
	return files
}

func jobData(job, group string, index int) map[string]string {
	return map[string]string{
		"a.txt":             fmt.Sprintf("%s data on %s/%d\n", job, group, index),
		"nested/deep/b.txt": "nested " + job + "\n",
		"empty":             "",
	}
}

var _ = Describe("an artifact written by upstream bbr v1.9.75", Ordered, func() {
	var orderLog string

	BeforeAll(func() {
		logDir := GinkgoT().TempDir()
		Expect(os.Chmod(logDir, 0o755)).To(Succeed())
		orderLog = filepath.Join(logDir, "order.log")
		labUp("basic", writeAccDeployment(orderLog))
	})

	It("restores with our bbr, every file byte for byte, backup-one-restore-all to every instance", func() {
		work := GinkgoT().TempDir()
		art := filepath.Join(work, "acc_20261125T032327Z")
		Expect(exec.Command("cp", "-r", filepath.Join(fixtureDir, "acc_20261125T032327Z"), art).Run()).To(Succeed())

		bbr(work, "acc", "deployment", "restore", "--artifact-path", art).expectSuccess()

		Expect(storeFiles("store", 0, "store")).To(Equal(jobData("store", "store", 0)))
		Expect(storeFiles("store", 1, "store")).To(Equal(jobData("store", "store", 1)))
		Expect(storeFiles("api", 0, "api")).To(Equal(jobData("api", "api", 0)))
		// The bootstrap instance's cache backup goes to both instances.
		Expect(storeFiles("store", 0, "cache")).To(Equal(jobData("cache", "store", 0)))
		Expect(storeFiles("store", 1, "cache")).To(Equal(jobData("cache", "store", 0)))
	})

	It("locked api before store and unlocked in reverse", func() {
		raw, err := os.ReadFile(orderLog)
		Expect(err).NotTo(HaveOccurred())
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		index := func(pattern string) int {
			for i, l := range lines {
				if strings.Contains(l, pattern) {
					return i
				}
			}
			Fail("no " + pattern + " in " + string(raw))
			return -1
		}
		Expect(index("api pre-restore-lock")).To(BeNumerically("<", index("store pre-restore-lock")))
		Expect(index("store post-restore-unlock")).To(BeNumerically("<", index("api post-restore-unlock")))
		Expect(index("store restore")).To(BeNumerically(">", index("worker pre-restore-lock")))
	})

	It("backs up with our bbr into the same files, names and metadata shape", func() {
		work := GinkgoT().TempDir()
		bbr(work, "acc", "deployment", "backup").expectSuccess()
		ours, err := artifact.Open(onlyDir(work))
		Expect(err).NotTo(HaveOccurred())
		theirs, err := artifact.Open(filepath.Join(fixtureDir, "acc_20261125T032327Z"))
		Expect(err).NotTo(HaveOccurred())
		// The restored data backed up again gives the same files and
		// checksums, except that store/1's cache now holds store/0's
		// (backup-one-restore-all restored it to every instance).
		want := theirs.Metadata().Files()
		custom := want["cache-acc-release-backup-one-restore-all.tar"]
		want["store-1-cache.tar"]["./a.txt"] = custom["./a.txt"]
		Expect(ours.Metadata().Files()).To(Equal(want))
		entries := func(dir string) []string {
			var names []string
			es, _ := os.ReadDir(dir)
			for _, e := range es {
				names = append(names, e.Name())
			}
			sort.Strings(names)
			return names
		}
		Expect(entries(ours.Path)).To(Equal(entries(theirs.Path)))
		out, err := exec.Command("tar", "-tf", filepath.Join(ours.Path, "store-1-store.tar")).Output()
		Expect(err).NotTo(HaveOccurred())
		for _, name := range strings.Fields(string(out)) {
			Expect(name).To(HavePrefix("./"))
		}
	})
})
