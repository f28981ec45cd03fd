package deploy_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/deploy"
)

var _ = Describe("the lab's variables", func() {
	It("resolves a property whose whole value is a ((lab_director_*)) name, at any depth", func() {
		dir := GinkgoT().TempDir()
		Expect(os.MkdirAll(filepath.Join(dir, "releases/r/jobs/j"), 0o755)).To(Succeed())
		manifest := `name: d
instance_groups:
- name: g
  instances: 1
  jobs:
  - name: j
    release: r
    properties:
      url: ((lab_director_url))
      nested: {list: [((lab_director_client)), "see ((lab_director_url))"]}
`
		Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest), 0o644)).To(Succeed())
		plan, err := deploy.Plan(dir, "127.77", 1, "/lab", "/bin/bbr-lab")
		Expect(err).NotTo(HaveOccurred())

		deploy.ResolveVars([]deploy.Planned{plan}, deploy.Vars("127.0.0.1:25555", []byte("PEM"), "s3cret"))
		props := plan.Specs[0].Jobs["j"].Properties
		Expect(props["url"]).To(Equal("https://127.0.0.1:25555"))
		Expect(props["nested"]).To(HaveKeyWithValue("list", []any{"admin", "see ((lab_director_url))"}))
	})
})
