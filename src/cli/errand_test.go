package cli

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/orchestrator"
)

var _ = Describe("the errand command", func() {
	var (
		connections atomic.Int64
		director    *httptest.Server
		errOut      bytes.Buffer
	)

	BeforeEach(func() {
		connections.Store(0)
		errOut.Reset()
		// Any connection counts, a TLS handshake that fails included.
		director = httptest.NewUnstartedServer(http.NotFoundHandler())
		director.Config.ConnState = func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				connections.Add(1)
			}
		}
		director.StartTLS()
		DeferCleanup(director.Close)
		// As Run does: urfave/cli would otherwise exit the test process.
		exiter := cli.OsExiter
		cli.OsExiter = func(int) {}
		DeferCleanup(func() { cli.OsExiter = exiter })
		// A failed command writes bbr-<time>.err.log to the working
		// directory: keep it out of the source tree.
		wd, err := os.Getwd()
		Expect(err).NotTo(HaveOccurred())
		Expect(os.Chdir(GinkgoT().TempDir())).To(Succeed())
		DeferCleanup(os.Chdir, wd)
	})

	run := func(errandName, config string) error {
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: director.Certificate().Raw})
		path := filepath.Join(GinkgoT().TempDir(), "config.yml")
		Expect(os.WriteFile(path, []byte(fmt.Sprintf("director: {url: %q, client: c, client_secret: s, ca_cert: %q}\n%s",
			director.URL, ca, config)), 0o600)).To(Succeed())
		s := session{ctx: context.Background(), version: "test", streams: Streams{Out: GinkgoWriter, Err: &errOut},
			leftovers: &orchestrator.Leftovers{}}
		return newApp(s).Run([]string{"bbr", "errand", errandName, "--config", path})
	}

	DescribeTable("refuses a config that cannot run before it contacts the Director",
		func(errandName, config, want string) {
			Expect(run(errandName, config)).To(MatchError(ContainSubstring(want)))
			Expect(connections.Load()).To(BeZero(), "no connection to the Director")
		},
		Entry("backup with nothing to back up", "backup", "", "nothing to back up"),
		Entry("restore without a deployment", "restore", "", "restore.deployment is required"),
	)
})
