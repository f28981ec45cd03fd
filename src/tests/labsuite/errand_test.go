package labsuite_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// writeReleaseJobDeployment colocates a real BOSH release job (spec, ERB
// templates, a package) with a lab job on one instance.
func writeReleaseJobDeployment() string {
	dir := filepath.Join(GinkgoT().TempDir(), "jumpbox")
	files := map[string]string{
		"releases/tools/jobs/report/spec": `---
name: report
templates:
  run.sh.erb: bin/run
packages: [greeter]
properties:
  greeting: {description: what to write, default: hello}
  target: {description: where to write it}
`,
		"releases/tools/jobs/report/templates/run.sh.erb": `#!/bin/bash
set -e
<% raise "target is required" unless p("target", nil) %>
/var/vcap/packages/greeter/bin/greet '<%= p("greeting") %> from <%= spec.name %>/<%= spec.index %>' > <%= p("target") %>
<% if p("greeting") == "fail" %>exit 3<% end %>
`,
		"releases/tools/packages/greeter/bin/greet": "#!/bin/sh\necho \"$1\"\n",
		"releases/tools/jobs/other/bin/bbr/backup":  "#!/bin/sh\ntrue\n",
	}
	for path, content := range files {
		full := filepath.Join(dir, path)
		Expect(os.MkdirAll(filepath.Dir(full), 0o755)).To(Succeed())
		Expect(os.WriteFile(full, []byte(content), 0o755)).To(Succeed())
	}
	manifest := `name: jumpbox
releases: [{name: tools, version: "1"}]
instance_groups:
- name: jumpbox
  instances: 1
  azs: [z1]
  jobs:
  - {name: other, release: tools}
  - {name: report, release: tools, properties: {target: /var/vcap/store/report.txt}}
- name: failing
  instances: 1
  azs: [z1]
  jobs:
  - {name: report, release: tools, properties: {target: /var/vcap/store/report.txt, greeting: fail}}
`
	Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest), 0o644)).To(Succeed())
	return dir
}

var _ = Describe("bbr-lab run-errand with a rendered release job", Ordered, func() {
	BeforeAll(func() { labUp("basic", writeReleaseJobDeployment()) })

	It("renders templates with manifest properties over spec defaults, installs packages, runs bin/run where the job is", func() {
		r := run(labBin, "run-errand", "--dir", labDir, "jumpbox", "report")
		Expect(r.code).To(Equal(1), "the failing group's bin/run exits 3")
		Expect(r.out).To(ContainSubstring("Running errand report on jumpbox/0"))
		Expect(r.err).To(ContainSubstring("errand report failed on [failing/0: exit status 3]"))
		out, err := os.ReadFile(filepath.Join(instance("jumpbox", "jumpbox", 0).Root, "store", "report.txt"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("hello from jumpbox/0\n"))
	})

	It("refuses a job no instance has", func() {
		r := run(labBin, "run-errand", "--dir", labDir, "jumpbox", "nope")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("no instance of deployment jumpbox has job nope"))
	})
})
