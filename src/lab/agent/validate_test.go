package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
)

// newPublicKey returns a fresh ed25519 public key in authorized_keys format.
func newPublicKey() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	sshPub, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
}

var _ = Describe("ValidateUser", func() {
	DescribeTable("accepts portable login names",
		func(name string) { Expect(ValidateUser(name)).To(Succeed()) },
		Entry("bosh's ephemeral users", "bosh_0123456789abcde"),
		Entry("a leading underscore", "_svc"),
		Entry("dashes and digits", "bbr-user-1"),
		Entry("32 characters", strings.Repeat("a", 32)),
	)
	DescribeTable("rejects anything else",
		func(name string) { Expect(ValidateUser(name)).To(MatchError(ContainSubstring("invalid user name"))) },
		Entry("empty", ""),
		Entry("upper case", "Bosh_1"),
		Entry("a leading digit", "1bosh"),
		Entry("a leading dash", "-bosh"),
		Entry("a path", "../etc"),
		Entry("a dot (sudo would ignore its sudoers file)", "bosh.1"),
		Entry("a space", "bosh 1"),
		Entry("a newline", "bosh\nroot"),
		Entry("shell characters", "bosh;id"),
		Entry("33 characters", strings.Repeat("a", 33)),
	)
})

var _ = Describe("ValidateKey", func() {
	It("returns the bare key without its comment", func() {
		key := newPublicKey()
		got, err := ValidateKey(key + " someone@somewhere\n")
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(key))
	})

	It("accepts RSA keys as bbr sends them", func() {
		// bbr and bosh generate one RSA-2048 key per run.
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		Expect(err).NotTo(HaveOccurred())
		sshPub, err := ssh.NewPublicKey(&priv.PublicKey)
		Expect(err).NotTo(HaveOccurred())
		key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
		got, err := ValidateKey(key)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(key))
	})

	DescribeTable("rejects",
		func(key func() string, msg string) {
			_, err := ValidateKey(key())
			Expect(err).To(MatchError(ContainSubstring(msg)))
		},
		Entry("garbage", func() string { return "not a key" }, "invalid public key"),
		Entry("an empty string", func() string { return "" }, "invalid public key"),
		Entry("authorized_keys options", func() string { return `command="/bin/sh" ` + newPublicKey() }, "options are not accepted"),
		Entry("two keys", func() string { return newPublicKey() + "\n" + newPublicKey() }, "exactly one key"),
	)
})

var _ = Describe("compileUserRegex", func() {
	It("compiles bbr's cleanup pattern", func() {
		re, err := compileUserRegex("^bosh_0123456789abcde")
		Expect(err).NotTo(HaveOccurred())
		Expect(re.MatchString("bosh_0123456789abcde")).To(BeTrue())
		Expect(re.MatchString("root")).To(BeFalse())
	})

	It("rejects empty, invalid and overlong patterns", func() {
		for _, expr := range []string{"", "(", strings.Repeat("a", maxRegexLen+1)} {
			_, err := compileUserRegex(expr)
			Expect(err).To(HaveOccurred(), expr)
		}
	})
})

var _ = Describe("ownedBy", func() {
	const status = "Name:\tsleep\nState:\t%s\nTgid:\t1\nUid:\t%s\t%s\t0\t0\n"
	It("matches the real or effective uid of a live process", func() {
		Expect(ownedBy(fmt.Sprintf(status, "S (sleeping)", "1001", "1001"), "1001")).To(BeTrue())
		Expect(ownedBy(fmt.Sprintf(status, "R (running)", "0", "1001"), "1001")).To(BeTrue())
		Expect(ownedBy(fmt.Sprintf(status, "S (sleeping)", "1002", "1002"), "1001")).To(BeFalse())
	})
	It("ignores zombies, which cannot be killed and wait for init", func() {
		Expect(ownedBy(fmt.Sprintf(status, "Z (zombie)", "1001", "1001"), "1001")).To(BeFalse())
	})
})
