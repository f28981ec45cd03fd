package director_test

import (
	"os"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// These specs run the real bosh CLI, which scripts/test builds into
// $BBR_TEST_BIN, against the lab Director.
var _ = Describe("the lab Director, seen by the bosh CLI", func() {
	var boshBin string

	BeforeEach(func() {
		dir := os.Getenv("BBR_TEST_BIN")
		if dir == "" {
			Skip("BBR_TEST_BIN is not set: scripts/test builds the bosh CLI there")
		}
		boshBin = filepath.Join(dir, "bosh")
	})

	for _, auth := range []string{"basic", "uaa"} {
		It("answers env, deployments, instances, manifest and SSH errors in "+auth+" mode", func() {
			lab := startDirector(auth, &fakeAgent{})
			home := GinkgoT().TempDir()
			caPath := filepath.Join(home, "ca.pem")
			Expect(os.WriteFile(caPath, []byte(lab.CA), 0o600)).To(Succeed())
			bosh := func(args ...string) (string, error) {
				cmd := exec.Command(boshBin, args...)
				cmd.Env = append(os.Environ(), "HOME="+home, "BOSH_ENVIRONMENT="+lab.URL, "BOSH_CA_CERT="+caPath,
					"BOSH_CLIENT="+client, "BOSH_CLIENT_SECRET="+secret, "BOSH_NON_INTERACTIVE=true")
				out, err := cmd.CombinedOutput()
				return string(out), err
			}

			out, err := bosh("env")
			Expect(err).NotTo(HaveOccurred(), out)
			Expect(out).To(ContainSubstring("282.0.0 (00000000)"))
			out, err = bosh("deployments")
			Expect(err).NotTo(HaveOccurred(), out)
			Expect(out).To(ContainSubstring("lab-sample/0+dev.1"))
			out, err = bosh("-d", "sample", "instances", "--ps")
			Expect(err).NotTo(HaveOccurred(), out)
			Expect(out).To(MatchRegexp(`redis/id-r1\s+redis\s+running`))
			out, err = bosh("-d", "sample", "manifest")
			Expect(err).NotTo(HaveOccurred(), out)
			Expect(out).To(ContainSubstring("name: smoke-tests"))

			out, err = bosh("-d", "sample", "ssh", "web/0", "-c", "true")
			Expect(err).To(HaveOccurred())
			Expect(out).To(ContainSubstring("Error: Instance group 'web' doesn't exist in deployment 'sample'"))
		})
	}
})
