package release

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// What the manifests and docs/errand.md tell an operator matches what the
// files do.
var _ = Describe("the manifests' and docs/errand.md's instructions", func() {
	variable := regexp.MustCompile(`\(\(([a-z_]+)\)\)`)

	// header is the file's leading comment, where its variables are named.
	header := func(raw string) string {
		var lines []string
		for _, l := range strings.Split(raw, "\n") {
			if l != "---" && !strings.HasPrefix(l, "#") {
				break
			}
			lines = append(lines, l)
		}
		return strings.Join(lines, "\n")
	}

	It("names every variable a manifest or ops-file uses in its leading comment", func() {
		files, err := filepath.Glob(filepath.Join(repoRoot(), "manifests", "*.yml"))
		Expect(err).NotTo(HaveOccurred())
		ops, err := filepath.Glob(filepath.Join(repoRoot(), "manifests", "ops", "*.yml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(append(files, ops...)).To(HaveLen(10))
		for _, f := range append(files, ops...) {
			raw, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			head := header(string(raw))
			for _, m := range variable.FindAllStringSubmatch(string(raw), -1) {
				Expect(head).To(ContainSubstring(m[1]), "%s uses ((%s)) but its leading comment does not name it", f, m[1])
			}
		}
	})
})
