package labsuite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The hardening review (issue 17), tried on a real instance.
var _ = Describe("Hardening", Ordered, func() {
	var worker func() modelInstance

	BeforeAll(func() {
		labUp("basic", writeFaultDeployment("hard", 1, "alpha"))
		worker = func() modelInstance { return instance("hard", "worker", 0) }
	})

	BeforeEach(func() { resetFaults("hard") })

	AfterEach(func() {
		Expect(stagingLeft("hard")).To(BeEmpty())
		Expect(labUsers()).To(BeEmpty())
	})

	Describe("a job directory whose name is a shell command", func() {
		var marker, evilDir string

		BeforeEach(func() {
			// The name holds no '/', so it walks up to / with cd and
			// touches a marker in /tmp, which the instance shares.
			marker = fmt.Sprintf("bbr-pwned-%d", time.Now().UnixNano())
			evil := "evil;cd ..;cd ..;cd ..;cd ..;cd ..;cd tmp;touch " + marker + ";x"
			evilDir = filepath.Join(worker().Root, "jobs", evil)
			script := filepath.Join(evilDir, "bin", "bbr", "backup")
			Expect(os.MkdirAll(filepath.Dir(script), 0o755)).To(Succeed())
			Expect(os.WriteFile(script, []byte("#!/bin/bash\necho x > \"${BBR_ARTIFACT_DIRECTORY}x\"\n"), 0o755)).To(Succeed())
			DeferCleanup(func() {
				Expect(os.RemoveAll(evilDir)).To(Succeed())
				os.Remove(filepath.Join("/tmp", marker))
			})
		})

		It("is refused before anything is locked, naming the value, and runs nothing", func() {
			dir := GinkgoT().TempDir()
			r := bbr(dir, "hard", "deployment", "backup")
			Expect(r.code).To(Equal(1), "stdout:\n%s\nstderr:\n%s", r.out, r.err)
			Expect(r.err).To(ContainSubstring(`refusing job name "evil;cd ..;`))
			Expect(filepath.Join("/tmp", marker)).NotTo(BeAnExistingFile(), "the name never reached a shell")
			Expect(scriptLog(worker(), "alpha")).NotTo(ContainSubstring("pre-backup-lock"))
			good, _ := artifactsIn(dir)
			Expect(good).To(BeEmpty())
		})
	})
})
