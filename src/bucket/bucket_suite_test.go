package bucket_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/objectstore"
)

func TestBucket(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Bucket Suite")
}

// server is an S3 server the specs store backups in.
type server struct {
	endpoint string
	keys     [2]string
	caPEM    string // for an https endpoint
}

var (
	// fake is gofakes3 over TLS: it does not decode the streaming
	// signature minio-go uses for parts over plain HTTP (AWS S3 and
	// SeaweedFS do), and over TLS the payload goes unsigned.
	fake     server
	seaweed  *objectstore.Server
	fakeKeys = [2]string{"fake-access-key", "fake-secret-key"}
)

var _ = BeforeSuite(func() {
	s := httptest.NewTLSServer(gofakes3.New(s3mem.New()).Server())
	DeferCleanup(s.Close)
	fake = server{endpoint: s.URL, keys: fakeKeys, caPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))}

	// The real server: built by scripts/test into BBR_TEST_BIN. Without
	// it (a plain `go test` on a laptop) its specs are skipped; CI has it.
	bin := os.Getenv("BBR_TEST_BIN")
	if bin == "" {
		return
	}
	weed := filepath.Join(bin, "weed")
	Expect(weed).To(BeAnExistingFile(), "scripts/test builds SeaweedFS into bin/weed")
	var err error
	seaweed, err = objectstore.Start(weed, GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(seaweed.Stop)
})

var specCount int

// newPrefix is a prefix no other spec uses: one bucket serves them all,
// as a real one serves many foundations.
func newPrefix() string {
	specCount++
	return fmt.Sprintf("foundation-%d/bbr", specCount)
}

// sharedBucket makes the suite's bucket on the server client reaches,
// once.
func sharedBucket(client *minio.Client) string {
	const name = "backups"
	exists, err := client.BucketExists(context.Background(), name)
	Expect(err).NotTo(HaveOccurred())
	if !exists {
		Expect(client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{})).To(Succeed())
	}
	return name
}
