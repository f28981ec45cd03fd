package director_test

import (
	"context"
	"net"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/director"
	"github.com/bbr-release/bbr/src/lab/director/labtest"
	"github.com/bbr-release/bbr/src/lab/pki"
)

// freeAddr is a loopback address nothing listens on (for a moment).
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().String()
}

var _ = Describe("ListenAndServe", func() {
	var ca *pki.CA

	BeforeEach(func() {
		var err error
		ca, err = pki.NewCA("test CA")
		Expect(err).NotTo(HaveOccurred())
	})

	It("serves the Director and the UAA on the lab's addresses until the context is done", func() {
		lab := testLab()
		lab.Director.Auth, lab.Director.Address, lab.Director.UAAAddress = "uaa", freeAddr(), freeAddr()
		tlsCfg, err := ca.ServerTLSConfig(nil)
		Expect(err).NotTo(HaveOccurred())
		srv := director.New(director.Config{Lab: lab, Agent: &fakeAgent{}, TLS: tlsCfg})

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- srv.ListenAndServe(ctx) }()

		// The certificate is valid for localhost too, which clients may use.
		d := labDirector{Server: labtest.Server{URL: "https://localhost:" + port(lab.Director.Address), UAAURL: "https://" + lab.Director.UAAAddress, CA: string(ca.CertPEM()), Lab: lab}}
		Eventually(func() error { _, err := d.anonymousClient().Info(); return err }).Should(Succeed())
		deps, err := d.boshClient(client, secret, nil).Deployments()
		Expect(err).NotTo(HaveOccurred())
		Expect(deps).To(HaveLen(2))

		cancel()
		Eventually(done).Should(Receive(BeNil()))
		_, err = net.Dial("tcp", lab.Director.Address)
		Expect(err).To(HaveOccurred())
	})

	It("fails when an address is taken", func() {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		defer taken.Close()
		lab := testLab()
		lab.Director.Auth, lab.Director.Address, lab.Director.UAAAddress = "uaa", freeAddr(), taken.Addr().String()
		tlsCfg, err := ca.ServerTLSConfig([]string{"127.0.0.1"})
		Expect(err).NotTo(HaveOccurred())
		err = director.New(director.Config{Lab: lab, TLS: tlsCfg}).ListenAndServe(context.Background())
		Expect(err).To(MatchError(ContainSubstring("listening on " + taken.Addr().String())))
	})

	It("needs a TLS configuration, a Director address, and a UAA address in uaa mode", func() {
		lab := testLab()
		lab.Director.Address = freeAddr()
		err := director.New(director.Config{Lab: lab}).ListenAndServe(context.Background())
		Expect(err).To(MatchError(ContainSubstring("no TLS configuration")))

		tlsCfg, err := ca.ServerTLSConfig(nil)
		Expect(err).NotTo(HaveOccurred())
		lab.Director.Auth = "uaa"
		err = director.New(director.Config{Lab: lab, TLS: tlsCfg}).ListenAndServe(context.Background())
		Expect(err).To(MatchError(ContainSubstring("no UAA address")))
		lab.Director.Auth = "ldap"
		err = director.New(director.Config{Lab: lab, TLS: tlsCfg}).ListenAndServe(context.Background())
		Expect(err).To(MatchError(ContainSubstring(`unknown auth "ldap"`)))
		lab.Director.Auth, lab.Director.Address = "basic", ""
		err = director.New(director.Config{Lab: lab, TLS: tlsCfg}).ListenAndServe(context.Background())
		Expect(err).To(MatchError(ContainSubstring("no Director address")))
	})
})

func port(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	Expect(err).NotTo(HaveOccurred())
	return p
}
