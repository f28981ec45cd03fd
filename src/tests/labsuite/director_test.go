package labsuite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

// writeDirectorDeployment is a director-like VM: a "director" job whose
// database must be locked after the "blobstore" job (metadata names the
// release, which director mode ignores), each backing up its store.
func writeDirectorDeployment() string {
	dir := filepath.Join(GinkgoT().TempDir(), "bosh")
	log := func(job, what string) string {
		return "mkdir -p /var/vcap/sys/log/" + job + "; echo " + what + " >> /var/vcap/sys/log/" + job + "/bbr.log\n"
	}
	jobs := map[string]map[string]string{
		"director": {
			"metadata":           "echo 'backup_should_be_locked_before: [{job_name: blobstore, release: bosh}]'",
			"pre-backup-lock":    log("director", "locked"),
			"backup":             `cp /var/vcap/store/director/db "${BBR_ARTIFACT_DIRECTORY%/}/db"`,
			"post-backup-unlock": log("director", "unlocked"),
			"restore":            `cp "${BBR_ARTIFACT_DIRECTORY%/}/db" /var/vcap/store/director/db`,
		},
		"blobstore": {
			"pre-backup-lock":    log("blobstore", "locked"),
			"backup":             `cp -a /var/vcap/store/blobstore/. "${BBR_ARTIFACT_DIRECTORY%/}/"`,
			"post-backup-unlock": log("blobstore", "unlocked"),
			"restore":            `rm -rf /var/vcap/store/blobstore; mkdir -p /var/vcap/store/blobstore; cp -a "${BBR_ARTIFACT_DIRECTORY%/}/." /var/vcap/store/blobstore/`,
		},
	}
	for job, scripts := range jobs {
		for name, body := range scripts {
			path := filepath.Join(dir, "releases", "bosh", "jobs", job, "bin", "bbr", name)
			Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
			Expect(os.WriteFile(path, []byte("#!/bin/bash\nset -e\n"+body+"\n"), 0o755)).To(Succeed())
		}
	}
	manifest := `name: bosh
releases: [{name: bosh, version: "1"}]
instance_groups:
- name: bosh
  instances: 1
  azs: [z1]
  jobs: [{name: director, release: bosh}, {name: blobstore, release: bosh}]
`
	Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest), 0o644)).To(Succeed())
	return dir
}

var _ = Describe("bbr director against a director-like VM", Ordered, func() {
	var workDir, keyDir, host string
	var vm string // the instance's /var/vcap on the host

	BeforeAll(func() {
		labUp("basic", writeDirectorDeployment())
		inst := instance("bosh", "bosh", 0)
		host, vm = inst.IP, inst.Root
		Expect(os.MkdirAll(filepath.Join(vm, "store", "director"), 0o755)).To(Succeed())
		Expect(os.MkdirAll(filepath.Join(vm, "store", "blobstore", "ab"), 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(vm, "store", "director", "db"), []byte("director database"), 0o600)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(vm, "store", "blobstore", "ab", "blob-1"), []byte("a compiled package"), 0o600)).To(Succeed())
		keyDir = GinkgoT().TempDir()
		run(labBin, "operator-key", "--dir", labDir, "bosh", "bosh/0", keyDir).expectSuccess()
	})

	BeforeEach(func() { workDir = GinkgoT().TempDir() })

	AfterEach(func() {
		Expect(stagingLeft("bosh")).To(BeEmpty(), "no /var/vcap/store/bbr-backup is left")
	})

	// directorWith runs bbr director with env added to the lab's.
	directorWith := func(env, extra []string, args ...string) result {
		base := []string{"director", "--host", host, "--username", "jumpbox", "--private-key-path", filepath.Join(keyDir, "id_ed25519")}
		return runIn(workDir, append([]string{"HOME=" + workDir}, env...), bbrBin, append(append(base, extra...), args...)...)
	}
	director := func(extra []string, args ...string) result { return directorWith(nil, extra, args...) }
	pinned := func() []string { return []string{"--known-hosts", filepath.Join(keyDir, "known_hosts")} }

	// The VM has ed25519 and ECDSA host keys; the known_hosts lists only
	// the ed25519 one, as `ssh` records it.
	It("passes pre-backup-check", func() {
		r := director(pinned(), "pre-backup-check").expectSuccess()
		Expect(r.out).To(ContainSubstring("Director can be backed up."))
	})

	It("backs up to <host>_<timestamp> with bosh-0-<job>.tar files, in lock order, and restores", func() {
		r := director(pinned(), "backup", "--artifact-path", workDir).expectSuccess()
		Expect(r.out).NotTo(ContainSubstring("not verified"))
		path := onlyDir(workDir)
		Expect(filepath.Base(path)).To(MatchRegexp(`^` + strings.ReplaceAll(host, ".", `\.`) + `_\d{8}T\d{6}Z$`))
		Expect(filepath.Join(path, "bosh-0-director.tar")).To(BeAnExistingFile())
		Expect(filepath.Join(path, "bosh-0-blobstore.tar")).To(BeAnExistingFile())
		art, err := artifact.Open(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(artifact.Verify(context.Background(), art)).To(Succeed())
		Expect(art.Metadata().Instances).To(HaveLen(1))
		for _, i := range art.Metadata().Instances {
			Expect(i.Name).To(Equal("bosh"))
			Expect(i.Index).To(Equal("0"))
		}
		// director's metadata asks for it to be locked before the blobstore.
		Expect(r.out).To(MatchRegexp(`(?s)Locking director on bosh/0.*Locking blobstore on bosh/0`))
		Expect(r.out).To(MatchRegexp(`(?s)Unlocking blobstore on bosh/0.*Unlocking director on bosh/0`))

		Expect(os.WriteFile(filepath.Join(vm, "store", "director", "db"), []byte("lost"), 0o600)).To(Succeed())
		Expect(os.RemoveAll(filepath.Join(vm, "store", "blobstore"))).To(Succeed())
		director(pinned(), "restore", "--artifact-path", path).expectSuccess()
		Expect(os.ReadFile(filepath.Join(vm, "store", "director", "db"))).To(Equal([]byte("director database")))
		Expect(os.ReadFile(filepath.Join(vm, "store", "blobstore", "ab", "blob-1"))).To(Equal([]byte("a compiled package")))
	})

	It("is backed up by the reference Concourse task, the key handed over on a file descriptor with no file left, the host key pinned", func() {
		r, work := runTask("bbr-backup-director", nil, map[string]string{
			"BOSH_DIRECTOR_HOST":        host,
			"BOSH_DIRECTOR_PRIVATE_KEY": string(must(os.ReadFile(filepath.Join(keyDir, "id_ed25519")))),
			"KNOWN_HOSTS":               string(must(os.ReadFile(filepath.Join(keyDir, "known_hosts")))),
		})
		Expect(r.code).To(Equal(0), r.out)
		Expect(r.out).NotTo(ContainSubstring("not verified"), "the host key is pinned")
		Expect(r.out).NotTo(ContainSubstring("PRIVATE KEY"))
		backups, _ := filepath.Glob(filepath.Join(work, "backup", host+"_*"))
		Expect(backups).To(HaveLen(1))
		Expect(filepath.Join(backups[0], "bosh-0-director.tar")).To(BeARegularFile())
		Expect(string(must(os.ReadFile(filepath.Join(work, "backup", "report.json"))))).To(ContainSubstring(`"kind": "director"`))
	})

	It("backs the Director up to a bucket and restores it from there", func() {
		s3 := startObjectStore()
		directorWith(s3Env(s3), pinned(), "backup", "--artifact-path", "s3://backups/director").expectSuccess()
		Expect(os.ReadDir(workDir)).To(BeEmpty())
		names := backupsIn(s3, "director/")
		Expect(names).To(ConsistOf(MatchRegexp(`^` + strings.ReplaceAll(host, ".", `\.`) + `_\d{8}T\d{6}Z$`)))
		Expect(objects(s3, "director/"+names[0]+"/")).To(Equal([]string{"bosh-0-blobstore.tar", "bosh-0-director.tar", "metadata"}))

		Expect(os.WriteFile(filepath.Join(vm, "store", "director", "db"), []byte("lost"), 0o600)).To(Succeed())
		directorWith(s3Env(s3), pinned(), "restore", "--artifact-path", "s3://backups/director/"+names[0]).expectSuccess()
		Expect(os.ReadFile(filepath.Join(vm, "store", "director", "db"))).To(Equal([]byte("director database")))
	})

	It("refuses a host key other than the pinned one", func() {
		other := filepath.Join(workDir, "known_hosts")
		Expect(os.WriteFile(other, []byte(host+" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o600)).To(Succeed())
		r := director([]string{"--known-hosts", other}, "pre-backup-check")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("key mismatch"))
	})

	It("without a known_hosts entry connects as upstream does, but warns with the fingerprint", func() {
		r := director(nil, "pre-backup-check").expectSuccess()
		Expect(r.out).To(MatchRegexp(`the host key of .* \(\S+ SHA256:\S+\) is not verified`))
	})

	It("backup-cleanup removes a leftover staging directory", func() {
		Expect(os.MkdirAll(filepath.Join(vm, "store", "bbr-backup", "director"), 0o755)).To(Succeed())
		r := director(pinned(), "backup", "--artifact-path", workDir)
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("bbr backup-cleanup"))
		director(pinned(), "backup-cleanup").expectSuccess()
	})
})
