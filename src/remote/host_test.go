package remote_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/remote"
)

var _ = Describe("a standalone VM's host", func() {
	DescribeTable("names the artifact after the host, and dials host:port",
		func(host, name, addr string) {
			Expect(remote.HostName(host)).To(Equal(name))
			Expect(remote.HostAddress(host)).To(Equal(addr))
		},
		Entry("bare IP", "10.0.0.6", "10.0.0.6", "10.0.0.6:22"),
		Entry("IP and port", "10.0.0.6:2222", "10.0.0.6", "10.0.0.6:2222"),
		Entry("URL", "https://director.example.com:25555", "director.example.com", "director.example.com:25555"),
		Entry("URL without port", "ssh://director.example.com", "director.example.com", "director.example.com:22"),
		Entry("IPv6 literal", "[fd00::6]:22", "fd00::6", "[fd00::6]:22"),
		Entry("bare IPv6", "fd00::6", "fd00::6", "[fd00::6]:22"),
	)

	newKey := func() ssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		key, err := ssh.NewPublicKey(pub)
		Expect(err).NotTo(HaveOccurred())
		return key
	}
	line := func(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }

	It("reads pinned keys as public keys or known_hosts lines, and accepts only those", func() {
		a, b, other := newKey(), newKey(), newKey()
		keys, err := remote.ParseHostKeys("# the Director VM\n" + line(a) + " root@bosh\n\n10.0.0.6 " + line(b) + "\n")
		Expect(err).NotTo(HaveOccurred())
		Expect(keys).To(HaveLen(2))
		check := remote.PinnedHostKeys("host_key lists", keys...)
		addr := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 6), Port: 22}
		Expect(check("10.0.0.6:22", addr, a)).To(Succeed())
		Expect(check("10.0.0.6:22", addr, b)).To(Succeed())
		err = check("10.0.0.6:22", addr, other)
		Expect(err).To(MatchError(ContainSubstring("host key mismatch for 10.0.0.6:22")))
		Expect(err).To(MatchError(ContainSubstring("but host_key lists ssh-ed25519 " + ssh.FingerprintSHA256(a))))
	})

	It("refuses what is not a key without quoting it, and an empty list", func() {
		_, err := remote.ParseHostKeys(line(newKey()) + "\n-----BEGIN OPENSSH PRIVATE KEY-----\n")
		Expect(err).To(MatchError("line 2 is neither a public key (ssh-ed25519 AAAA...) nor a known_hosts line"))
		_, err = remote.ParseHostKeys("# nothing\n")
		Expect(err).To(MatchError("no host key in it"))
	})
})
