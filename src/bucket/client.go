package bucket

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// newCore builds the S3 client c describes.
func newCore(c Config) (*minio.Core, error) {
	endpoint, secure := "s3.amazonaws.com", true
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			// Not err: it quotes the URL, and with it a password.
			return nil, errors.New("the S3 endpoint is not a URL")
		}
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	transport, err := newTransport(c.CACert, c.StallTimeout)
	if err != nil {
		return nil, err
	}
	lookup := map[string]minio.BucketLookupType{"auto": minio.BucketLookupAuto, "path": minio.BucketLookupPath, "virtual": minio.BucketLookupDNS}[c.Addressing]
	return minio.NewCore(endpoint, &minio.Options{
		Creds:        credentialsFor(c),
		Secure:       secure,
		Transport:    transport,
		Region:       c.Region,
		BucketLookup: lookup,
		MaxRetries:   4,
	})
}

// credentialsFor is the static keys when given, else the AWS chain: the
// shared credentials file, then the instance's IAM role (EC2, ECS, EKS).
func credentialsFor(c Config) *credentials.Credentials {
	if c.AccessKeyID != "" {
		return credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
}

// newTransport bounds how long an endpoint that does not answer, or
// stops answering, can hold a run (every connection is under a progress
// deadline of stall), and trusts only caPEM when it is given (as
// AWS_CA_BUNDLE does).
func newTransport(caPEM string, stall time.Duration) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = progressDialer(stall)
	t.TLSHandshakeTimeout = 10 * time.Second
	// The progress deadline fails a response that does not start as
	// well; this is the backstop, a little later, so that the error an
	// operator sees is the one naming the stall.
	t.ResponseHeaderTimeout = stall + 10*time.Second
	// An idle connection is closed by the transport before its progress
	// deadline can fail it under a request that has just picked it.
	t.IdleConnTimeout = stall / 2
	// HTTP/1.1 only: the progress deadline is per connection, which is
	// per request only without HTTP/2's multiplexing (S3 speaks 1.1).
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP1(true)
	t.MaxIdleConnsPerHost = 64
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("the S3 CA bundle holds no PEM certificate")
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return t, nil
}

func serverSide(c Config) (encrypt.ServerSide, error) {
	switch c.SSE {
	case "AES256":
		return encrypt.NewSSE(), nil
	case "aws:kms":
		return encrypt.NewSSEKMS(c.KMSKeyID, nil)
	}
	return nil, nil
}

// explain turns an S3 error into what an operator can act on. It never
// quotes a credential: minio-go's errors hold none.
func explain(location string, err error) error {
	if err == nil {
		return nil
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var opErr *net.OpError
	var resp minio.ErrorResponse
	errors.As(err, &resp)
	switch code := resp.Code; {
	case code == "NoSuchBucket":
		return fmt.Errorf("%s: the bucket does not exist: create it, or fix the bucket name (%w)", location, err)
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "InvalidToken" || code == "ExpiredToken":
		return fmt.Errorf("%s: the S3 credentials were refused: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) (%s)", location, code)
	case code == "AccessDenied":
		return fmt.Errorf("%s: access denied: the credentials lack a permission a backup needs (see docs/storage.md for the IAM policy) (%w)", location, err)
	case errors.As(err, &certErr) || errors.As(err, &unknownAuth) || strings.Contains(err.Error(), "x509:"):
		return fmt.Errorf("%s: the S3 endpoint's TLS certificate is not trusted: give its CA in AWS_CA_BUNDLE (%w)", location, err)
	case isStall(err):
		return fmt.Errorf("%s: %w", location, err) // it says what stalled
	case errors.As(err, &opErr) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: the S3 endpoint does not answer: check AWS_ENDPOINT_URL_S3 and the network (%w)", location, err)
	}
	return fmt.Errorf("%s: %w", location, err)
}
