package deploy_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/deploy"
	"github.com/bbr-release/bbr/src/lab/sample"
)

var _ = Describe("planning deployments", func() {
	It("lays out the sample: IDs, bootstrap, AZs and IPs per deployment", func() {
		dir := filepath.Join(GinkgoT().TempDir(), "sample")
		Expect(sample.Extract(sample.Default, dir)).To(Succeed())
		plan, err := deploy.Plan(dir, "127.77", 2, "/lab", "/bin/bbr-lab")
		Expect(err).NotTo(HaveOccurred())
		Expect(plan.Name).To(Equal("sample"))
		Expect(plan.Manifest).To(ContainSubstring("instance_groups:"))

		type row struct {
			Group, IP, AZ string
			Index         int
			Bootstrap     bool
		}
		var rows []row
		ids := map[string]bool{}
		for _, s := range plan.Specs {
			i := s.Instance
			rows = append(rows, row{i.Group, i.IP, i.AZ, i.Index, i.Bootstrap})
			Expect(i.ID).To(MatchRegexp(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`))
			ids[i.ID] = true
			Expect(s.LabDir).To(Equal("/lab"))
			Expect(s.Jobs[i.Jobs[0]].Source).To(Equal(filepath.Join(dir, "releases/lab-sample/jobs", i.Jobs[0])))
		}
		Expect(ids).To(HaveLen(4))
		Expect(rows).To(Equal([]row{
			{"redis", "127.77.2.10", "z1", 0, true},
			{"redis", "127.77.2.11", "z2", 1, false},
			{"postgres", "127.77.2.12", "z1", 0, true},
			{"api", "127.77.2.13", "z1", 0, true},
		}))
	})

	It("skips errand groups and rejects jobs without a release directory", func() {
		dir := GinkgoT().TempDir()
		Expect(os.MkdirAll(filepath.Join(dir, "releases/r/jobs/j"), 0o755)).To(Succeed())
		write := func(manifest string) {
			Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest), 0o644)).To(Succeed())
		}
		write("name: d\ninstance_groups:\n- {name: g, instances: 1, jobs: [{name: j, release: r}]}\n- {name: e, lifecycle: errand, instances: 1, jobs: [{name: j, release: r}]}\n")
		plan, err := deploy.Plan(dir, "127.77", 1, "/lab", "/bin/bbr-lab")
		Expect(err).NotTo(HaveOccurred())
		Expect(plan.Specs).To(HaveLen(1))
		Expect(plan.Specs[0].Instance.AZ).To(Equal("z1"))

		write("name: d\ninstance_groups:\n- {name: g, instances: 1, jobs: [{name: missing, release: r}]}\n")
		_, err = deploy.Plan(dir, "127.77", 1, "/lab", "/bin/bbr-lab")
		Expect(err).To(MatchError(ContainSubstring("no directory")))

		write("name: ../etc\ninstance_groups: []\n")
		_, err = deploy.Plan(dir, "127.77", 1, "/lab", "/bin/bbr-lab")
		Expect(err).To(MatchError(ContainSubstring("not a plain name")))
	})

	DescribeTable("CheckSubnet",
		func(subnet string, ok bool) {
			if ok {
				Expect(deploy.CheckSubnet(subnet)).To(Succeed())
			} else {
				Expect(deploy.CheckSubnet(subnet)).NotTo(Succeed())
			}
		},
		Entry(nil, "127.77", true),
		Entry(nil, "127.0", true),
		Entry(nil, "10.1", false),
		Entry(nil, "127.256", false),
		Entry(nil, "127.1.2", false),
		Entry(nil, "127", false),
	)
})
