// Package labtest serves the lab Director and its UAA in-process, for specs
// that drive a Director client against it.
package labtest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/director"
	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/pki"
)

// Server is a running lab Director and UAA.
type Server struct {
	URL    string // the Director
	UAAURL string
	CA     string // PEM of the CA that signed both certificates
	Lab    model.Lab
}

// Start serves lab's Director (with auth "basic" or "uaa") and its UAA over
// TLS from a fresh CA, on loopback, until the current spec ends. Requests
// are logged to log. configure, if given, adjusts the Director's Config.
func Start(lab model.Lab, auth string, agent director.Agent, log io.Writer, configure ...func(*director.Config)) Server {
	ca, err := pki.NewCA("test CA")
	Expect(err).NotTo(HaveOccurred())
	tlsCfg, err := ca.ServerTLSConfig([]string{"127.0.0.1"})
	Expect(err).NotTo(HaveOccurred())

	// The UAA's address goes into /info, so it is taken before New.
	uaaLn, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	lab.Director.Auth = auth
	lab.Director.UAAAddress = uaaLn.Addr().String()
	cfg := director.Config{Lab: lab, Agent: agent, Log: log, TLS: tlsCfg}
	for _, f := range configure {
		f(&cfg)
	}
	srv := director.New(cfg)

	uaa := &httptest.Server{Listener: uaaLn, Config: &http.Server{Handler: srv.UAAHandler()}, TLS: tlsCfg}
	uaa.StartTLS()
	DeferCleanup(uaa.Close)
	dir := httptest.NewUnstartedServer(srv.Handler())
	dir.TLS = tlsCfg
	dir.StartTLS()
	DeferCleanup(dir.Close)
	lab.Director.Address = dir.Listener.Addr().String()
	return Server{URL: dir.URL, UAAURL: uaa.URL, CA: string(ca.CertPEM()), Lab: lab}
}
