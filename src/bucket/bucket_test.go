package bucket_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
	"github.com/bbr-release/bbr/src/bucket"
)

var ctx = context.Background()

// client is a plain S3 client of srv.
func (srv server) client() *minio.Client {
	c, err := minio.New(hostOf(srv.endpoint), &minio.Options{
		Creds: credentials.NewStaticV4(srv.keys[0], srv.keys[1], ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath,
		Secure: strings.HasPrefix(srv.endpoint, "https://"), Transport: transportTrusting(srv.caPEM),
	})
	Expect(err).NotTo(HaveOccurred())
	return c
}

func hostOf(endpoint string) string {
	return strings.TrimPrefix(strings.TrimPrefix(endpoint, "http://"), "https://")
}

func transportTrusting(caPEM string) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if caPEM != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(caPEM))
		t.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return t
}

// harness runs the conformance suite against srv.
func harness(srv func() server) destinationtest.Harness {
	return destinationtest.Harness{
		New: func() artifact.Destination {
			s := srv()
			d, err := bucket.New(ctx, bucket.Config{Bucket: sharedBucket(s.client()), Prefix: newPrefix(), Endpoint: s.endpoint,
				Addressing: "path", CACert: s.caPEM, AccessKeyID: s.keys[0], SecretAccessKey: s.keys[1],
				PartSize: bucket.MinPartSize, Concurrency: 2})
			Expect(err).NotTo(HaveOccurred())
			return d
		},
		Corrupt: func(dest artifact.Destination, backup, file string, content []byte) {
			b, prefix, err := bucket.ParseURL(dest.String())
			Expect(err).NotTo(HaveOccurred())
			_, err = srv().client().PutObject(ctx, b, prefix+"/"+backup+"/"+file, bytes.NewReader(content), int64(len(content)), minio.PutObjectOptions{})
			Expect(err).NotTo(HaveOccurred())
		},
		Leftovers: func(dest artifact.Destination) []string {
			keys, err := dest.(*bucket.Destination).Uploads(ctx)
			Expect(err).NotTo(HaveOccurred())
			return keys
		},
		Crash: func(dest artifact.Destination, backup string) {
			b, prefix, err := bucket.ParseURL(dest.String())
			Expect(err).NotTo(HaveOccurred())
			core := minio.Core{Client: srv().client()}
			key := prefix + "/" + backup + "/db-0-pg.tar"
			id, err := core.NewMultipartUpload(ctx, b, key, minio.PutObjectOptions{})
			Expect(err).NotTo(HaveOccurred())
			part := bytes.Repeat([]byte("x"), bucket.MinPartSize)
			_, err = core.PutObjectPart(ctx, b, key, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{})
			Expect(err).NotTo(HaveOccurred())
		},
		LargeFile: 3*bucket.MinPartSize + 1234,
	}
}

var _ = Describe("Destination on SeaweedFS (a real S3-compatible server)", func() {
	BeforeEach(func() {
		if seaweed == nil {
			Skip("BBR_TEST_BIN is not set: scripts/test runs these against SeaweedFS")
		}
	})
	destinationtest.Run(harness(func() server {
		return server{endpoint: seaweed.Endpoint, keys: [2]string{seaweed.AccessKey, seaweed.SecretKey}}
	}))
})

var _ = Describe("Destination on gofakes3 (in-process)", func() {
	destinationtest.Run(harness(func() server { return fake }))
})

// recorder is a gofakes3 server whose requests are watched and, when
// refuse says so, answered with an error.
type recorder struct {
	mu       sync.Mutex
	headers  []http.Header
	inFlight atomic.Int32
	maxParts atomic.Int32
	refuse   func(r *http.Request) bool
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			rec.mu.Lock()
			rec.headers = append(rec.headers, r.Header.Clone())
			rec.mu.Unlock()
		}
		if rec.refuse != nil && rec.refuse(r) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>writes refused</Message></Error>`)
			return
		}
		if r.URL.Query().Has("partNumber") {
			n := rec.inFlight.Add(1)
			defer rec.inFlight.Add(-1)
			for {
				m := rec.maxParts.Load()
				if n <= m || rec.maxParts.CompareAndSwap(m, n) {
					break
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

func fakeServer(rec *recorder, tlsServer bool) (*httptest.Server, string) {
	h := rec.wrap(gofakes3.New(s3mem.New()).Server())
	var s *httptest.Server
	if tlsServer {
		s = httptest.NewTLSServer(h)
	} else {
		s = httptest.NewServer(h)
	}
	DeferCleanup(s.Close)
	c, err := minio.New(strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://"), &minio.Options{
		Creds: credentials.NewStaticV4(fakeKeys[0], fakeKeys[1], ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath,
		Secure: tlsServer, Transport: s.Client().Transport,
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(c.MakeBucket(ctx, "backups", minio.MakeBucketOptions{})).To(Succeed())
	return s, s.URL
}

// tarOf is a tar holding one file of about size bytes.
func tarOf(size int) []byte {
	return destinationtest.MakeTar(map[string][]byte{"./big": bytes.Repeat([]byte("0123456789abcdef"), size/16)})
}

var _ = Describe("Destination", func() {
	config := func(endpoint string) bucket.Config {
		return bucket.Config{Bucket: "backups", Prefix: "p", Endpoint: endpoint, Addressing: "path",
			AccessKeyID: fakeKeys[0], SecretAccessKey: fakeKeys[1], PartSize: bucket.MinPartSize, Concurrency: 2}
	}
	// start is a backup being written to a watched gofakes3, its
	// destination configured by c (config's when nil).
	start := func(rec *recorder, c func(url string) bucket.Config) (*bucket.Destination, artifact.Writer, string) {
		_, url := fakeServer(rec, false)
		if c == nil {
			c = config
		}
		d, err := bucket.New(ctx, c(url))
		Expect(err).NotTo(HaveOccurred())
		w, err := d.Create(ctx, "cf_20261201T100000Z", time.Now())
		Expect(err).NotTo(HaveOccurred())
		return d, w, url
	}

	It("holds at most Concurrency parts in flight however many tars upload at once", func() {
		rec := &recorder{}
		_, w, _ := start(rec, nil)
		tarball := tarOf(3 * bucket.MinPartSize)
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				defer GinkgoRecover()
				_, n, err := w.WriteTar(artifact.InstanceFileName("db", string(rune('0'+i)), "pg"), bytes.NewReader(tarball))
				Expect(err).NotTo(HaveOccurred())
				Expect(n).To(BeEquivalentTo(len(tarball)))
			})
		}
		wg.Wait()
		Expect(rec.maxParts.Load()).To(BeNumerically("==", 2))
	})

	It("sends the server-side encryption headers it is configured with", func() {
		rec := &recorder{}
		const key = "arn:aws:kms:us-east-1:111122223333:key/bbr"
		_, w, _ := start(rec, func(url string) bucket.Config {
			c := config(url)
			c.SSE, c.KMSKeyID = "aws:kms", key
			return c
		})
		_, _, err := w.WriteTar("db-0-pg.tar", bytes.NewReader(tarOf(2*bucket.MinPartSize)))
		Expect(err).NotTo(HaveOccurred())
		Expect(w.Finish(time.Now(), nil)).To(Succeed())
		var kms []string
		for _, h := range rec.headers {
			if h.Get("X-Amz-Server-Side-Encryption") == "aws:kms" {
				kms = append(kms, h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"))
			}
		}
		// The multipart initiation and the metadata's PUT.
		Expect(kms).To(ConsistOf(key, key))
	})

	It("sends parts unsigned with a CRC32C the server checks, declared when the upload starts", func() {
		rec := &recorder{}
		_, w, _ := start(rec, nil)
		_, _, err := w.WriteTar("db-0-pg.tar", bytes.NewReader(tarOf(2*bucket.MinPartSize)))
		Expect(err).NotTo(HaveOccurred())
		var initiated, parts int
		for _, h := range rec.headers {
			if h.Get("X-Amz-Checksum-Algorithm") == "CRC32C" && h.Get("X-Amz-Checksum-Crc32c") == "" {
				initiated++
			}
			if h.Get("X-Amz-Checksum-Crc32c") != "" {
				Expect(h.Get("X-Amz-Content-Sha256")).To(Equal("UNSIGNED-PAYLOAD"))
				parts++
			}
		}
		Expect(initiated).To(Equal(1))
		Expect(parts).To(Equal(3))
	})

	It("aborts the multipart upload when the bucket refuses a part, and never looks good", func() {
		rec := &recorder{}
		_, url := fakeServer(rec, false)
		d, err := bucket.New(ctx, config(url))
		Expect(err).NotTo(HaveOccurred())
		rec.refuse = func(r *http.Request) bool { return r.URL.Query().Get("partNumber") == "2" }
		w, err := d.Create(ctx, "cf_20261201T100000Z", time.Now())
		Expect(err).NotTo(HaveOccurred())
		_, _, err = w.WriteTar("db-0-pg.tar", bytes.NewReader(tarOf(3*bucket.MinPartSize)))
		Expect(err).To(MatchError(ContainSubstring("access denied")))
		rec.refuse = nil
		Expect(w.Finish(time.Now(), err)).To(Succeed())
		Expect(d.Uploads(ctx)).To(BeEmpty())
		all, err := d.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		Expect(all[0].State).To(Equal(artifact.Failed))
	})

	It("says a backup is not good when its metadata could not be written, and marks it failed", func() {
		rec := &recorder{}
		d, w, _ := start(rec, nil)
		_, _, err := w.WriteTar("db-0-pg.tar", bytes.NewReader(tarOf(1024)))
		Expect(err).NotTo(HaveOccurred())
		rec.refuse = func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/metadata") }
		Expect(w.Finish(time.Now(), nil)).To(MatchError(ContainSubstring("the backup could not be marked good, so it is marked failed")))
		all, err := d.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(ConsistOf(HaveField("State", artifact.Failed)))
	})

	It("never counts a backup whose metadata names a file it lacks as good", func() {
		d, w, url := start(&recorder{}, nil)
		sums, _, err := w.WriteTar("db-0-pg.tar", bytes.NewReader(tarOf(1024)))
		Expect(err).NotTo(HaveOccurred())
		Expect(w.AddInstanceArtifact("db", 0, "pg", sums)).To(Succeed())
		Expect(w.Finish(time.Now(), nil)).To(Succeed())
		c, err := minio.New(hostOf(url), &minio.Options{Creds: credentials.NewStaticV4(fakeKeys[0], fakeKeys[1], ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.RemoveObject(ctx, "backups", "p/cf_20261201T100000Z/db-0-pg.tar", minio.RemoveObjectOptions{})).To(Succeed())
		all, err := d.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(ConsistOf(And(HaveField("State", artifact.Failed), HaveField("Why", MatchError(ContainSubstring("names files it lacks: db-0-pg.tar"))))))
	})

	It("trusts the CA it is given, and says what to do when the certificate is not trusted", func() {
		s, url := fakeServer(&recorder{}, true)
		_, err := bucket.New(ctx, config(url))
		Expect(err).To(MatchError(ContainSubstring("TLS certificate is not trusted: give its CA in AWS_CA_BUNDLE")))
		c := config(url)
		c.CACert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))
		_, err = bucket.New(ctx, c)
		Expect(err).NotTo(HaveOccurred())
	})

	It("names wrong credentials, a missing bucket and an endpoint that does not answer", func() {
		_, url := fakeServer(&recorder{}, false)
		c := config(url)
		c.Bucket = "no-such-bucket"
		_, err := bucket.New(ctx, c)
		Expect(err).To(MatchError(ContainSubstring("the bucket does not exist")))

		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		closed := "http://" + l.Addr().String()
		Expect(l.Close()).To(Succeed())
		_, err = bucket.New(ctx, config(closed))
		Expect(err).To(MatchError(ContainSubstring("the S3 endpoint does not answer")))
	})

	It("refuses a configuration that cannot work, saying each thing to fix", func() {
		err := bucket.Config{Bucket: "B", Prefix: "a/../b", Endpoint: "ftp://x", Addressing: "dns", SSE: "rot13",
			AccessKeyID: "id", PartSize: 1, Concurrency: 100}.Validate()
		for _, want := range []string{"not a bucket name", "not a plain name", "must be a URL", "auto, path or virtual",
			"AES256 (SSE-S3) or aws:kms", "both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", "between 5 MiB and 5 GiB", "between 1 and 64"} {
			Expect(err).To(MatchError(ContainSubstring(want)))
		}
	})
})

var _ = Describe("ParseURL and FromEnv", func() {
	It("splits s3://bucket/prefix and reads the AWS CLI's variables", func() {
		env := map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "tok",
			"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "https://generic", "AWS_ENDPOINT_URL_S3": "https://s3.example:9000"}
		c, err := bucket.FromEnv("s3://my-bucket/a/b/", func(k string) string { return env[k] })
		Expect(err).NotTo(HaveOccurred())
		Expect(c).To(And(HaveField("Bucket", "my-bucket"), HaveField("Prefix", "a/b"), HaveField("Region", "eu-west-1"),
			HaveField("Endpoint", "https://s3.example:9000"), HaveField("AccessKeyID", "id"), HaveField("SessionToken", "tok")))
		Expect(c.String()).To(Equal("s3://my-bucket/a/b"))
		Expect(c.String()).NotTo(ContainSubstring("secret"))

		_, err = bucket.FromEnv("s3://x", func(string) string { return "" })
		Expect(err).To(MatchError(ContainSubstring("not a bucket name")))
		_, err = bucket.FromEnv("s3://ok-bucket", func(k string) string {
			return map[string]string{"AWS_CA_BUNDLE": "/no/such/ca.pem"}[k]
		})
		Expect(err).To(MatchError(ContainSubstring("reading AWS_CA_BUNDLE")))
	})
})

var _ = Describe("an S3 endpoint that holds a password", func() {
	DescribeTable("is refused without repeating the password",
		func(endpoint, secret string) {
			c := bucket.Config{Bucket: "backups", Endpoint: endpoint}
			err := c.Validate()
			Expect(err).To(MatchError(Or(ContainSubstring("must be a URL like https://s3.example.com:9000"), ContainSubstring("must not hold a user or password"))))
			Expect(err.Error()).NotTo(ContainSubstring(secret))
			_, err = bucket.New(ctx, c)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).NotTo(ContainSubstring(secret))
		},
		Entry("a bad escape in the password", "https://bbr:p%zzs3cr3t@s3.example.com", "s3cr3t"),
		Entry("a port that is not a number", "https://bbr:s3cr3t@s3.example.com:9x", "s3cr3t"),
		Entry("a space in the password", "https://bbr:s3 cr3t@s3.example.com", "cr3t"),
		Entry("no scheme", "bbr:s3cr3t@s3.example.com:9000", "s3cr3t"),
		Entry("an '@' and a '/' in the password", "https://bbr:s3/cr@3t@s3.example.com:9x", "cr@3t"),
		Entry("a URL that parses", "https://bbr:s3cr3t@s3.example.com", "s3cr3t"),
	)
	It("still shows the rest of it", func() {
		err := bucket.Config{Bucket: "backups", Endpoint: "https://bbr:s3/cr@3t@s3.example.com:9x"}.Validate()
		Expect(err).To(MatchError(ContainSubstring(`"https://REDACTED@s3.example.com:9x"`)))
	})
})
