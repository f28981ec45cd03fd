package lockorder_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lockorder"
)

var _ = Describe("Layers", func() {
	before := func(job, release string) []lockorder.Ref {
		return []lockorder.Ref{{JobName: job, Release: release}}
	}

	It("puts independent jobs in one layer", func() {
		layers, err := lockorder.Layers([]lockorder.Job{{Name: "a", Release: "r"}, {Name: "b", Release: "r"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(layers).To(Equal([][]int{{0, 1}}))
	})

	It("locks a job before every instance of the jobs it names", func() {
		jobs := []lockorder.Job{
			{Name: "store", Release: "r"},
			{Name: "api", Release: "r", LockBefore: before("store", "r")},
			{Name: "store", Release: "r"},
		}
		layers, err := lockorder.Layers(jobs)
		Expect(err).NotTo(HaveOccurred())
		Expect(layers).To(Equal([][]int{{1}, {0, 2}}))
	})

	It("chains three jobs into three layers", func() {
		jobs := []lockorder.Job{
			{Name: "c", Release: "r"},
			{Name: "b", Release: "r", LockBefore: before("c", "r")},
			{Name: "a", Release: "r", LockBefore: before("b", "r")},
		}
		layers, err := lockorder.Layers(jobs)
		Expect(err).NotTo(HaveOccurred())
		Expect(layers).To(Equal([][]int{{2}, {1}, {0}}))
	})

	It("ignores dependencies on absent jobs and on other releases", func() {
		jobs := []lockorder.Job{
			{Name: "a", Release: "r", LockBefore: before("missing", "r")},
			{Name: "b", Release: "r", LockBefore: before("a", "other-release")},
		}
		layers, err := lockorder.Layers(jobs)
		Expect(err).NotTo(HaveOccurred())
		Expect(layers).To(Equal([][]int{{0, 1}}))
	})

	It("matches on job name alone when releases are unknown (both empty)", func() {
		jobs := []lockorder.Job{
			{Name: "a"},
			{Name: "b", LockBefore: before("a", "")},
		}
		layers, err := lockorder.Layers(jobs)
		Expect(err).NotTo(HaveOccurred())
		Expect(layers).To(Equal([][]int{{1}, {0}}))
	})

	It("rejects a cycle", func() {
		jobs := []lockorder.Job{
			{Name: "a", Release: "r", LockBefore: before("b", "r")},
			{Name: "b", Release: "r", LockBefore: before("a", "r")},
			{Name: "c", Release: "r"},
		}
		_, err := lockorder.Layers(jobs)
		Expect(err).To(MatchError(lockorder.ErrCyclic))
		Expect(err.Error()).To(ContainSubstring("r/a"))
	})
})
