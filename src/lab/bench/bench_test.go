package bench_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/bench"
)

var _ = Describe("choosing scenarios", func() {
	all := bench.Scenarios(1)
	keys := func(ss []bench.Scenario) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Key)
		}
		return out
	}

	It("runs all but the scale scenarios by default", func() {
		Expect(bench.Select(all, "")).To(HaveEach(HaveField("LockFloor", false)))
		Expect(keys(must(bench.Select(all, "")))).To(Equal([]string{"s1", "s2", "s3"}))
	})

	It("runs s2 for s4, once, in the order asked", func() {
		got, err := bench.Select(all, "s3, s4,s2")
		Expect(err).NotTo(HaveOccurred())
		Expect(keys(got)).To(Equal([]string{"s3", "s2"}))
	})

	It("names the scenarios there are when one is unknown", func() {
		_, err := bench.Select(all, "s1,s9")
		Expect(err).To(MatchError(ContainSubstring(`unknown scenario "s9": use s1, s2, s3, s4, n10, n50, n100 or scale`)))
	})

	It("runs n10, n50 and n100 for scale: one group of N instances with 1 MiB each, whatever the data scale", func() {
		got, err := bench.Select(bench.Scenarios(16), "scale,n50")
		Expect(err).NotTo(HaveOccurred())
		Expect(keys(got)).To(Equal([]string{"n10", "n50", "n100"}))
		for _, s := range got {
			Expect(s.Instances).To(Equal(map[string]int{"n10": 10, "n50": 50, "n100": 100}[s.Key]))
			Expect(s.Jobs).To(Equal(1))
			Expect(s.SizeMiB).To(Equal(1))
			Expect(s.LockFloor).To(BeTrue())
		}
	})
})

func must(ss []bench.Scenario, err error) []bench.Scenario {
	Expect(err).NotTo(HaveOccurred())
	return ss
}

var _ = Describe("judging the targets", func() {
	target := func(targets []bench.Target, what string) bench.Target {
		for _, t := range targets {
			if t.What == what {
				return t
			}
		}
		Fail("no target " + what)
		return bench.Target{}
	}

	It("compares medians, not minimums, and checks the lock window against the scripts", func() {
		runs := []bench.Run{
			{Scenario: "s1", Tool: "ours", Wall: 2.0, RSSMiB: 30, LockWindow: 0.5, Scripts: 0.1},
			{Scenario: "s1", Tool: "ours", Wall: 4.0, RSSMiB: 101, LockWindow: 2.0, Scripts: 0.1},
			{Scenario: "s1", Tool: "ours", Wall: 3.0, RSSMiB: 40, LockWindow: 1.5, Scripts: 0.1},
			{Scenario: "s1", Tool: "floor", Wall: 2.0},
			{Scenario: "s1", Tool: "upstream", Wall: 6.0},
		}
		_, targets := bench.Summarise(runs)
		floor := target(targets, "s1 ours/floor wall")
		Expect(floor.Value).To(BeNumerically("~", 1.5, 1e-9))
		Expect(floor.Met).To(BeFalse())
		Expect(target(targets, "s1 ours/upstream wall").Met).To(BeTrue())
		Expect(target(targets, "s1 ours peak RSS MiB").Met).To(BeFalse(), "the worst round counts for memory")
		lock := target(targets, "s1 ours lock window beyond scripts (s)")
		Expect(lock.Value).To(BeNumerically("~", 1.4, 1e-9))
		Expect(lock.Met).To(BeFalse())
	})

	It("leaves out a ratio when a tool did not run", func() {
		_, targets := bench.Summarise([]bench.Run{{Scenario: "s2", Tool: "ours", Wall: 3}})
		for _, t := range targets {
			Expect(t.What).NotTo(ContainSubstring("upstream"))
		}
	})
})

var _ = Describe("judging the bucket targets", func() {
	It("compares the bucket with the local backup and restore, and wants no local disk written", func() {
		runs := []bench.Run{
			{Scenario: "s1", Tool: "ours", Wall: 2.0, DiskMiB: 1024},
			{Scenario: "s1", Tool: "ours-s3", Wall: 3.0, RSSMiB: 90, DiskMiB: 0.5},
			{Scenario: "s1r", Tool: "ours", Wall: 2.0},
			{Scenario: "s1r", Tool: "ours-s3", Wall: 2.4},
			{Scenario: "s1", Tool: "s3-floor", Wall: 2.8},
		}
		_, targets := bench.Summarise(runs)
		byWhat := map[string]bench.Target{}
		for _, t := range targets {
			byWhat[t.What] = t
		}
		Expect(byWhat["s1 backup to bucket/local wall"]).To(And(HaveField("Value", 1.5), HaveField("Met", false)))
		Expect(byWhat["s1r restore from bucket/local wall"].Met).To(BeTrue())
		Expect(byWhat["s1 ours-s3 peak RSS MiB"].Met).To(BeTrue())
		Expect(byWhat["s1 ours-s3 local disk written MiB"]).To(And(HaveField("Value", 0.5), HaveField("Met", false)))
	})
})

var _ = Describe("judging the lock window against N", func() {
	runs := []bench.Run{
		{Scenario: "n10", Tool: "ours", Wall: 1, LockWindow: 0.2},
		{Scenario: "n10", Tool: "upstream", Wall: 2, LockWindow: 0.5},
		{Scenario: "n10", Tool: "lock-floor", Wall: 0.1, LockWindow: 0.1},
		{Scenario: "n100", Tool: "ours", Wall: 3, LockWindow: 1.1},
		{Scenario: "n100", Tool: "upstream", Wall: 9, LockWindow: 5.0},
		{Scenario: "n100", Tool: "lock-floor", Wall: 0.9, LockWindow: 1.0},
	}

	It("compares each tool's seconds per added instance with the lock floor's", func() {
		figs, _ := bench.Summarise(runs)
		growth := bench.ScaleGrowth(figs)
		Expect(growth).To(HaveLen(2))
		Expect(growth[0].Tool).To(Equal("ours"))
		Expect(growth[0].FromN).To(Equal(10))
		Expect(growth[0].ToN).To(Equal(100))
		Expect(growth[0].PerInstance).To(BeNumerically("~", 0.01, 1e-9))
		Expect(growth[0].LabPerInst).To(BeNumerically("~", 0.01, 1e-9))
		Expect(growth[0].AgainstTheLab).To(BeNumerically("~", 1.0, 1e-9))
		Expect(growth[1].AgainstTheLab).To(BeNumerically("~", 5.0, 1e-9))
	})

	It("holds ours to the lab's growth, not upstream", func() {
		_, targets := bench.Summarise(runs)
		var scale []bench.Target
		for _, t := range targets {
			if t.What == "n10-n100 ours lock growth/lab's" {
				scale = append(scale, t)
			}
		}
		Expect(scale).To(ConsistOf(And(HaveField("Value", BeNumerically("~", 1.0, 1e-9)), HaveField("Met", true))))
	})

	It("judges nothing without the lock floor or with one N", func() {
		figs, _ := bench.Summarise(runs[:2])
		Expect(bench.ScaleGrowth(figs)).To(BeEmpty())
		figs, _ = bench.Summarise(append([]bench.Run{}, runs[0], runs[2]))
		Expect(bench.ScaleGrowth(figs)).To(BeEmpty())
	})
})
