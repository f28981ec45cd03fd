package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/pki"
)

func parseCert(certPEM []byte) *x509.Certificate {
	block, _ := pem.Decode(certPEM)
	ExpectWithOffset(1, block).NotTo(BeNil())
	cert, err := x509.ParseCertificate(block.Bytes)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return cert
}

func pool(ca *pki.CA) *x509.CertPool {
	p := x509.NewCertPool()
	ExpectWithOffset(1, p.AppendCertsFromPEM(ca.CertPEM())).To(BeTrue())
	return p
}

// handshake connects to a TLS server with cfg as a client naming serverName.
func handshake(cfg *tls.Config, roots *x509.CertPool, serverName string) error {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName})
	if err == nil {
		conn.Close()
	}
	return err
}

var _ = Describe("the lab CA", func() {
	It("is a ten-year ECDSA P-256 CA", func() {
		ca, err := pki.NewCA("lab CA")
		Expect(err).NotTo(HaveOccurred())
		cert := parseCert(ca.CertPEM())
		Expect(cert.IsCA).To(BeTrue())
		Expect(cert.Subject.CommonName).To(Equal("lab CA"))
		Expect(cert.NotAfter).To(BeTemporally("~", time.Now().AddDate(10, 0, 0), 24*time.Hour))
		Expect(cert.PublicKey.(*ecdsa.PublicKey).Curve).To(Equal(elliptic.P256()))
	})

	It("issues server certificates with IP and DNS names that verify against it", func() {
		ca, err := pki.NewCA("lab CA")
		Expect(err).NotTo(HaveOccurred())
		certPEM, keyPEM, err := ca.IssueServer([]string{"127.0.0.2", "director.lab"})
		Expect(err).NotTo(HaveOccurred())
		_, err = tls.X509KeyPair(certPEM, keyPEM)
		Expect(err).NotTo(HaveOccurred())

		cert := parseCert(certPEM)
		Expect(cert.IPAddresses).To(HaveLen(1))
		Expect(cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.2"))).To(BeTrue())
		Expect(cert.DNSNames).To(ConsistOf("director.lab"))
		Expect(cert.ExtKeyUsage).To(ConsistOf(x509.ExtKeyUsageServerAuth))
		for _, name := range []string{"127.0.0.2", "director.lab"} {
			_, err = cert.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: name})
			Expect(err).NotTo(HaveOccurred(), name)
		}
		_, err = cert.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: "127.0.0.1"})
		Expect(err).To(HaveOccurred())

		other, err := pki.NewCA("other")
		Expect(err).NotTo(HaveOccurred())
		_, err = cert.Verify(x509.VerifyOptions{Roots: pool(other), DNSName: "director.lab"})
		Expect(err).To(HaveOccurred())
	})

	It("refuses to issue a certificate for no host", func() {
		ca, err := pki.NewCA("lab CA")
		Expect(err).NotTo(HaveOccurred())
		_, _, err = ca.IssueServer(nil)
		Expect(err).To(MatchError(ContainSubstring("no hosts")))
	})

	It("serves TLS for the given hosts and always for 127.0.0.1 and localhost", func() {
		ca, err := pki.NewCA("lab CA")
		Expect(err).NotTo(HaveOccurred())
		cfg, err := ca.ServerTLSConfig([]string{"director.lab"})
		Expect(err).NotTo(HaveOccurred())
		for _, name := range []string{"director.lab", "127.0.0.1", "localhost"} {
			Expect(handshake(cfg, pool(ca), name)).To(Succeed(), name)
		}
		Expect(handshake(cfg, pool(ca), "elsewhere.lab")).NotTo(Succeed())
	})

	Describe("LoadOrCreate", func() {
		var dir string

		BeforeEach(func() { dir = filepath.Join(GinkgoT().TempDir(), "lab") })

		It("creates the CA once, with the key readable by its owner only, and loads it after", func() {
			ca, err := pki.LoadOrCreate(dir)
			Expect(err).NotTo(HaveOccurred())
			info, err := os.Stat(filepath.Join(dir, "ca.key"))
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))
			Expect(os.ReadFile(filepath.Join(dir, "ca.pem"))).To(Equal(ca.CertPEM()))

			again, err := pki.LoadOrCreate(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(again.CertPEM()).To(Equal(ca.CertPEM()))
			// The loaded CA signs with the same key: clients holding the
			// first ca.pem trust what it issues.
			certPEM, _, err := again.IssueServer([]string{"127.0.0.1"})
			Expect(err).NotTo(HaveOccurred())
			_, err = parseCert(certPEM).Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: "127.0.0.1"})
			Expect(err).NotTo(HaveOccurred())
		})

		It("fails on a damaged key rather than replace the CA clients trust", func() {
			_, err := pki.LoadOrCreate(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile(filepath.Join(dir, "ca.key"), []byte("garbage"), 0o600)).To(Succeed())
			_, err = pki.LoadOrCreate(dir)
			Expect(err).To(MatchError(ContainSubstring("loading CA from " + dir)))
		})
	})
})
