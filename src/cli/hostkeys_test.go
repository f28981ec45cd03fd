package cli

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

var _ = Describe("the Director VM's host key check", func() {
	publicKey := func(key crypto.Signer) ssh.PublicKey {
		pub, err := ssh.NewPublicKey(key.Public())
		Expect(err).NotTo(HaveOccurred())
		return pub
	}
	knownHosts := func(lines ...string) string {
		file := filepath.Join(GinkgoT().TempDir(), "known_hosts")
		content := ""
		for _, l := range lines {
			content += l + "\n"
		}
		Expect(os.WriteFile(file, []byte(content), 0o600)).To(Succeed())
		return file
	}
	ignore := func(ssh.PublicKey) {}

	var edKey, ecKey, rsaKey ssh.PublicKey
	BeforeEach(func() {
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		r, _ := rsa.GenerateKey(rand.Reader, 2048)
		edKey, ecKey, rsaKey = publicKey(ed), publicKey(ec), publicKey(r)
	})

	// `ssh director` records only the ed25519 key; Go prefers ECDSA, so a
	// VM with both would show a key the file does not list.
	It("asks only for the algorithms of the keys the file lists for the host", func() {
		file := knownHosts(knownhosts.Line([]string{"10.0.0.6:22"}, edKey), knownhosts.Line([]string{"10.0.0.7:22"}, ecKey))
		_, algorithms, err := directorHostKeyCheck(file, "10.0.0.6:22", ignore)
		Expect(err).NotTo(HaveOccurred())
		Expect(algorithms).To(Equal([]string{ssh.KeyAlgoED25519}))
	})

	It("asks for every signature algorithm of a listed RSA key, and for each listed type", func() {
		file := knownHosts(knownhosts.Line([]string{"director.example:2222"}, rsaKey), knownhosts.Line([]string{"director.example:2222"}, ecKey))
		_, algorithms, err := directorHostKeyCheck(file, "director.example:2222", ignore)
		Expect(err).NotTo(HaveOccurred())
		Expect(algorithms).To(ConsistOf(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA, ecKey.Type()))
	})

	It("asks for any algorithm when no file lists the host", func() {
		GinkgoT().Setenv("HOME", GinkgoT().TempDir())
		check, algorithms, err := directorHostKeyCheck("", "10.0.0.6:22", ignore)
		Expect(err).NotTo(HaveOccurred())
		Expect(algorithms).To(BeNil())
		Expect(check).NotTo(BeNil())
	})

	It("still refuses a key of a listed type that differs", func() {
		file := knownHosts(knownhosts.Line([]string{"10.0.0.6:22"}, edKey))
		check, _, err := directorHostKeyCheck(file, "10.0.0.6:22", ignore)
		Expect(err).NotTo(HaveOccurred())
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		Expect(check("10.0.0.6:22", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 6), Port: 22}, publicKey(other))).To(MatchError(ContainSubstring("key mismatch")))
	})
})
