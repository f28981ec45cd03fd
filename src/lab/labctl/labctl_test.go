package labctl_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/labctl"
	"github.com/bbr-release/bbr/src/lab/model"
)

var _ = Describe("FindInstance", func() {
	lab := model.Lab{Deployments: []model.Deployment{{Name: "d", Instances: []model.Instance{
		{Group: "g", Index: 0, ID: "id-0"}, {Group: "g", Index: 1, ID: "id-1"},
	}}}}
	It("finds by index or ID", func() {
		Expect(labctl.FindInstance(lab, "d", "g/1")).To(HaveField("ID", "id-1"))
		Expect(labctl.FindInstance(lab, "d", "g/id-0")).To(HaveField("Index", 0))
	})
	It("explains what is missing", func() {
		_, err := labctl.FindInstance(lab, "x", "g/0")
		Expect(err).To(MatchError(ContainSubstring("no deployment")))
		_, err = labctl.FindInstance(lab, "d", "g/7")
		Expect(err).To(MatchError(ContainSubstring("no instance g/7")))
		_, err = labctl.FindInstance(lab, "d", "g")
		Expect(err).To(MatchError(ContainSubstring("GROUP/INDEX")))
	})
})
