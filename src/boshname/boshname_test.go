package boshname_test

import (
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/boshname"
)

func TestBoshname(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "boshname")
}

var _ = Describe("names", func() {
	DescribeTable("accepts BOSH's names", func(s string) {
		Expect(boshname.Check("job", s)).To(Succeed())
	},
		Entry("a job", "bbr-cfnetworkingdb"),
		Entry("dots and underscores", "postgres-9.4_x"),
		Entry("a leading digit", "0ab"),
		Entry("a plus and a leading underscore, as the Director allows", "_a+b"),
		Entry("the longest", strings.Repeat("a", boshname.MaxLen)),
	)

	DescribeTable("refuses anything that could escape a path or a shell, naming the value", func(s string) {
		err := boshname.Check("job", s)
		Expect(err).To(MatchError(ContainSubstring("refusing job name %q", s)))
	},
		Entry("empty", ""),
		Entry("dot", "."),
		Entry("dot dot", ".."),
		Entry("a shell command", "evil;$(touch /tmp/x);x"),
		Entry("a space", "a b"),
		Entry("a slash", "a/b"),
		Entry("a quote", "a'b"),
		Entry("a newline", "a\nb"),
		Entry("an option", "-rf"),
		Entry("a hidden name", ".x"),
		Entry("too long", strings.Repeat("a", boshname.MaxLen+1)),
	)

	It("accepts instance IDs and indexes, refuses others", func() {
		Expect(boshname.CheckID("6b1ff3f2-5c4e-4b1e-9a6c-0f9c2c2a1b3d")).To(Succeed())
		Expect(boshname.CheckID("0")).To(Succeed())
		Expect(boshname.CheckID("x;id")).To(MatchError(ContainSubstring(`"x;id"`)))
	})
})
