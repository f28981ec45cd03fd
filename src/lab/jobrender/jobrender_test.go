package jobrender_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/jobrender"
)

var _ = Describe("rendering a release job", func() {
	var job, dst string
	inst := jobrender.Instance{Deployment: "jumpbox", Group: "jumpbox", Index: 2, ID: "abc", AZ: "z1", IP: "127.0.0.9", Bootstrap: true}

	BeforeEach(func() {
		job, dst = GinkgoT().TempDir(), GinkgoT().TempDir()
		Expect(os.MkdirAll(filepath.Join(job, "templates"), 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(job, "spec"), []byte(`---
name: demo
templates:
  run.erb: bin/run
  config.erb: config/config.yml
packages: [bbr]
properties:
  a.b: {description: a nested property, default: 1}
  c: {description: an optional one}
  list: {default: [x, z]}
`), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(job, "templates", "run.erb"), []byte(
			`#!/bin/bash
echo <%= p("a.b") %> <% if_p("c") do |c| %>c=<%= c %><% end %> <%= spec.index %> <%= spec.deployment %> <%= spec.ip %> <%= spec.bootstrap %>
`), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(job, "templates", "config.erb"), []byte(
			`<% raise "list must not be empty" if p("list").empty? %><%= p("list").to_json %>`), 0o644)).To(Succeed())
	})

	It("uses spec defaults, manifest properties, the instance's spec, and makes bin/ executable", func() {
		Expect(jobrender.Render(job, dst, inst, map[string]any{"c": "set"})).To(Succeed())
		run, err := os.ReadFile(filepath.Join(dst, "bin", "run"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(run)).To(Equal("#!/bin/bash\necho 1 c=set 2 jumpbox 127.0.0.9 true\n"))
		info, _ := os.Stat(filepath.Join(dst, "bin", "run"))
		Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o755)))
		Expect(os.ReadFile(filepath.Join(dst, "config", "config.yml"))).To(Equal([]byte(`["x","z"]`)))
	})

	It("overrides nested defaults and fails with the template's own message", func() {
		Expect(jobrender.Render(job, dst, inst, map[string]any{"a": map[any]any{"b": 7}})).To(Succeed())
		Expect(os.ReadFile(filepath.Join(dst, "bin", "run"))).To(ContainSubstring("echo 7  2"))
		err := jobrender.Render(job, dst, inst, map[string]any{"list": []any{}})
		Expect(err).To(MatchError(ContainSubstring("list must not be empty")))
	})
})
