package bench_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/bench"
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

	It("runs all of them by default", func() {
		Expect(bench.Select(all, "")).To(Equal(all))
	})

	It("runs s2 for s4, once, in the order asked", func() {
		got, err := bench.Select(all, "s3, s4,s2")
		Expect(err).NotTo(HaveOccurred())
		Expect(keys(got)).To(Equal([]string{"s3", "s2"}))
	})

	It("names the scenarios there are when one is unknown", func() {
		_, err := bench.Select(all, "s1,s9")
		Expect(err).To(MatchError(ContainSubstring(`unknown scenario "s9": use s1, s2, s3 or s4`)))
	})
})

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
