package labdir_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/labdir"
	"github.com/bbr-release/bbr/src/lab/model"
)

var _ = Describe("the lab directory", func() {
	It("is claimed once, refused while a lab is in it, and emptied by RemoveContents", func() {
		parent := GinkgoT().TempDir()
		Expect(labdir.Claim(filepath.Join(parent, "lab"))).To(MatchError(ContainSubstring("SSH users could not reach")))
		Expect(os.Chmod(parent, 0o711)).To(Succeed())
		dir := filepath.Join(parent, "lab")
		Expect(labdir.Claim(dir)).To(Succeed())
		st, err := os.Stat(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o711)))
		Expect(os.WriteFile(filepath.Join(dir, model.FileName), []byte("{}"), 0o600)).To(Succeed())
		Expect(labdir.Claim(dir)).To(MatchError(ContainSubstring("run `bbr-lab down")))

		Expect(labdir.RemoveContents(dir)).To(Succeed())
		Expect(dir).NotTo(BeADirectory())
	})

	It("never claims or empties someone else's directory", func() {
		dir := GinkgoT().TempDir()
		keep := filepath.Join(dir, "deployments")
		Expect(os.Mkdir(keep, 0o755)).To(Succeed())
		Expect(labdir.Claim(dir)).To(MatchError(ContainSubstring("not a lab directory")))
		Expect(labdir.RemoveContents(dir)).To(Succeed())
		Expect(keep).To(BeADirectory())
	})

	It("rejects paths sshd_config could not carry", func() {
		_, err := labdir.Path("/tmp/a b")
		Expect(err).To(HaveOccurred())
		_, err = labdir.Path("/")
		Expect(err).To(HaveOccurred())
	})
})
