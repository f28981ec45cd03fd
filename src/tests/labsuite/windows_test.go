package labsuite_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
)

// writeMixedDeployment has a Linux group and a group on a Windows stemcell;
// both run a job with bbr scripts.
func writeMixedDeployment() string {
	dir := filepath.Join(GinkgoT().TempDir(), "mixed")
	for name, body := range map[string]string{
		"backup":  `echo data > "${BBR_ARTIFACT_DIRECTORY%/}/data"`,
		"restore": `cp "${BBR_ARTIFACT_DIRECTORY%/}/data" /var/vcap/store/restored`,
	} {
		path := filepath.Join(dir, "releases", "r", "jobs", "store", "bin", "bbr", name)
		Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
		Expect(os.WriteFile(path, []byte("#!/bin/bash\nset -e\n"+body+"\n"), 0o755)).To(Succeed())
	}
	manifest := `name: mixed
releases: [{name: r, version: "1"}]
stemcells:
- {alias: default, os: ubuntu-jammy, version: latest}
- {alias: windows, os: windows2019, version: latest}
instance_groups:
- {name: linux, instances: 1, azs: [z1], stemcell: default, jobs: [{name: store, release: r}]}
- {name: win, instances: 1, azs: [z1], stemcell: windows, jobs: [{name: store, release: r}]}
`
	Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest), 0o644)).To(Succeed())
	return dir
}

var _ = Describe("a deployment with Windows instances", Ordered, func() {
	BeforeAll(func() { labUp("basic", writeMixedDeployment()) })

	AfterEach(func() {
		Expect(labUsers()).To(BeEmpty(), "the SSH user is removed from the Windows instance too")
		Expect(stagingLeft("mixed")).To(BeEmpty())
	})

	It("backs up and restores the Linux instances and skips the Windows ones with a warning", func() {
		workDir := GinkgoT().TempDir()
		win := instance("mixed", "win", 0)
		r := bbr(workDir, "mixed", "deployment", "backup").expectSuccess()
		Expect(r.out).To(ContainSubstring("WARN - skipping Windows instance win/" + win.ID))
		art, err := artifact.Open(onlyDir(workDir))
		Expect(err).NotTo(HaveOccurred())
		Expect(art.Metadata().Instances).To(HaveLen(1))
		Expect(art.Metadata().Instances[0].Name).To(Equal("linux"))

		bbr(workDir, "mixed", "deployment", "restore", "--artifact-path", art.Path).expectSuccess()
		Expect(filepath.Join(instance("mixed", "linux", 0).Root, "store", "restored")).To(BeAnExistingFile())
		Expect(filepath.Join(win.Root, "store", "restored")).NotTo(BeAnExistingFile())
	})
})
