package main

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/sample"
)

var _ = Describe("planning deployments", func() {
	It("lays out the sample: IDs, bootstrap, AZs and IPs per deployment", func() {
		dir := filepath.Join(GinkgoT().TempDir(), "sample")
		Expect(sample.Extract(sample.Default, dir)).To(Succeed())
		plan, err := planDeployment(dir, "127.77", 2, "/lab", "/bin/bbr-lab")
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
		plan, err := planDeployment(dir, "127.77", 1, "/lab", "/bin/bbr-lab")
		Expect(err).NotTo(HaveOccurred())
		Expect(plan.Specs).To(HaveLen(1))
		Expect(plan.Specs[0].Instance.AZ).To(Equal("z1"))

		write("name: d\ninstance_groups:\n- {name: g, instances: 1, jobs: [{name: missing, release: r}]}\n")
		_, err = planDeployment(dir, "127.77", 1, "/lab", "/bin/bbr-lab")
		Expect(err).To(MatchError(ContainSubstring("no directory")))

		write("name: ../etc\ninstance_groups: []\n")
		_, err = planDeployment(dir, "127.77", 1, "/lab", "/bin/bbr-lab")
		Expect(err).To(MatchError(ContainSubstring("not a plain name")))
	})

	DescribeTable("checkSubnet",
		func(subnet string, ok bool) {
			if ok {
				Expect(checkSubnet(subnet)).To(Succeed())
			} else {
				Expect(checkSubnet(subnet)).NotTo(Succeed())
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

var _ = Describe("the lab directory", func() {
	It("is claimed once, refused while a lab is in it, and emptied by removeLabContents", func() {
		parent := GinkgoT().TempDir()
		Expect(claimLabDir(filepath.Join(parent, "lab"))).To(MatchError(ContainSubstring("SSH users could not reach")))
		Expect(os.Chmod(parent, 0o711)).To(Succeed())
		dir := filepath.Join(parent, "lab")
		Expect(claimLabDir(dir)).To(Succeed())
		st, err := os.Stat(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o711)))
		Expect(os.WriteFile(filepath.Join(dir, model.FileName), []byte("{}"), 0o600)).To(Succeed())
		Expect(claimLabDir(dir)).To(MatchError(ContainSubstring("run `bbr-lab down")))

		Expect(removeLabContents(dir)).To(Succeed())
		Expect(dir).NotTo(BeADirectory())
	})

	It("never claims or empties someone else's directory", func() {
		dir := GinkgoT().TempDir()
		keep := filepath.Join(dir, "deployments")
		Expect(os.Mkdir(keep, 0o755)).To(Succeed())
		Expect(claimLabDir(dir)).To(MatchError(ContainSubstring("not a lab directory")))
		Expect(removeLabContents(dir)).To(Succeed())
		Expect(keep).To(BeADirectory())
	})

	It("rejects paths sshd_config could not carry", func() {
		_, err := labDirPath("/tmp/a b")
		Expect(err).To(HaveOccurred())
		_, err = labDirPath("/")
		Expect(err).To(HaveOccurred())
	})
})

var _ = Describe("findInstance", func() {
	lab := model.Lab{Deployments: []model.Deployment{{Name: "d", Instances: []model.Instance{
		{Group: "g", Index: 0, ID: "id-0"}, {Group: "g", Index: 1, ID: "id-1"},
	}}}}
	It("finds by index or ID", func() {
		Expect(findInstance(lab, "d", "g/1")).To(HaveField("ID", "id-1"))
		Expect(findInstance(lab, "d", "g/id-0")).To(HaveField("Index", 0))
	})
	It("explains what is missing", func() {
		_, err := findInstance(lab, "x", "g/0")
		Expect(err).To(MatchError(ContainSubstring("no deployment")))
		_, err = findInstance(lab, "d", "g/7")
		Expect(err).To(MatchError(ContainSubstring("no instance g/7")))
		_, err = findInstance(lab, "d", "g")
		Expect(err).To(MatchError(ContainSubstring("GROUP/INDEX")))
	})
})
