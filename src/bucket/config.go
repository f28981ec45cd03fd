// Package bucket keeps backups in an S3-compatible bucket (AWS S3, GCS in
// interoperability mode, Ceph RGW, SeaweedFS, MinIO): an
// artifact.Destination whose objects mirror the local layout,
// <prefix>/<deployment>_<timestamp>/<file>, so that `aws s3 sync` of a
// good backup gives a directory upstream bbr restores.
//
// The client is minio-go: one well-kept module that speaks to every
// S3-compatible server, with both addressing styles, SSE-S3 and SSE-KMS,
// and the low-level multipart calls this package needs to bound memory
// across all uploads of a run (see parts).
package bucket

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Scheme prefixes a bucket location: s3://bucket/prefix.
const Scheme = "s3://"

// Defaults that fit a 1 GiB jumpbox: at most PartSize × Concurrency bytes
// of parts are held in memory, whatever the number of parallel uploads.
const (
	DefaultPartSize    = 16 << 20
	DefaultConcurrency = 4
	MinPartSize        = 5 << 20 // S3's minimum for every part but the last
	MaxPartSize        = 5 << 30
	MaxParts           = 10000
	MaxStallTimeout    = time.Hour
)

// Config is how to reach the bucket. Secrets come from the environment
// or the errand's config file, never from argv.
type Config struct {
	Bucket string
	Prefix string
	// Endpoint is the server's URL (https://host:port); empty is AWS S3.
	Endpoint string
	Region   string
	// Addressing is "auto" (the default), "path" or "virtual".
	Addressing string
	// CACert is a PEM bundle trusted instead of the system's.
	CACert string
	// Static keys; when AccessKeyID is empty the AWS credential chain is
	// used (the shared credentials file, then the instance's IAM role).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// SSE is "" (the bucket's default), "AES256" (SSE-S3) or "aws:kms"
	// (SSE-KMS, with KMSKeyID or the account's default key).
	SSE         string
	KMSKeyID    string
	PartSize    int64
	Concurrency int
	// StallTimeout fails a read or write on the bucket that moved no byte
	// for this long (a stalled server or proxy); 0 is DefaultStallTimeout.
	StallTimeout time.Duration
}

// IsURL says whether location names a bucket rather than a path.
func IsURL(location string) bool { return strings.HasPrefix(location, Scheme) }

// ParseURL splits s3://bucket/prefix into the bucket and the prefix
// (without slashes at either end).
func ParseURL(raw string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(raw, Scheme)
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://bucket/prefix location", raw)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if err := checkBucketName(bucket); err != nil {
		return "", "", err
	}
	if err := checkPrefix(prefix); err != nil {
		return "", "", err
	}
	return bucket, prefix, nil
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func checkBucketName(b string) error {
	if !bucketName.MatchString(b) || strings.Contains(b, "..") {
		return fmt.Errorf("%q is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-'): give s3://bucket/prefix", b)
	}
	return nil
}

var prefixSegment = regexp.MustCompile(`^[A-Za-z0-9!_.*'()+-]+$`)

func checkPrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > 512 {
		return fmt.Errorf("the prefix %q is longer than 512 characters", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if !prefixSegment.MatchString(seg) || seg == "." || seg == ".." {
			return fmt.Errorf("the prefix %q has a part %q that is not a plain name (letters, digits, and !_.*'()+-; no empty, '.' or '..' parts)", p, seg)
		}
	}
	return nil
}

// FromEnv is the configuration the AWS CLI's environment variables give,
// for the bucket and prefix of location.
func FromEnv(location string, getenv func(string) string) (Config, error) {
	b, prefix, err := ParseURL(location)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		Bucket:          b,
		Prefix:          prefix,
		Endpoint:        first(getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL")),
		Region:          first(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")),
		AccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
	}
	if path := getenv("AWS_CA_BUNDLE"); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("reading AWS_CA_BUNDLE: %w (give the path of a PEM file)", err)
		}
		c.CACert = string(raw)
	}
	return c, nil
}

func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// String is the bucket's location; it never holds a secret.
func (c Config) String() string {
	if c.Prefix == "" {
		return Scheme + c.Bucket
	}
	return Scheme + c.Bucket + "/" + c.Prefix
}

// Plaintext says whether the endpoint is plain http: backups (and a
// manifest's credentials) would cross the network unencrypted.
func (c Config) Plaintext() bool { return strings.HasPrefix(c.Endpoint, "http://") }

// redactEndpoint is an endpoint as a message may quote it: whatever
// comes before its last '@' may be a user and password (one that did not
// parse, so the URL's own userinfo cannot say where it ends).
func redactEndpoint(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	scheme, _, ok := strings.Cut(raw[:at], "://")
	if !ok || strings.ContainsAny(scheme, "/@") {
		return "REDACTED@" + raw[at+1:]
	}
	return scheme + "://REDACTED@" + raw[at+1:]
}

// withDefaults fills what was left empty.
func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Addressing == "" {
		c.Addressing = "auto"
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	return c
}

// Validate says everything that is wrong with c, each with what to do.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkBucketName(c.Bucket); err != nil {
		errs = append(errs, err)
	}
	if err := checkPrefix(c.Prefix); err != nil {
		errs = append(errs, err)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err == nil && u.User != nil:
			// Never quoted: it holds a password.
			bad("the S3 endpoint must not hold a user or password: give the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/"):
			bad("the S3 endpoint %q must be a URL like https://s3.example.com:9000 (AWS_ENDPOINT_URL_S3)", redactEndpoint(c.Endpoint))
		}
	}
	switch c.Addressing {
	case "", "auto", "path", "virtual":
	default:
		bad("the S3 addressing %q must be auto, path or virtual", c.Addressing)
	}
	switch c.SSE {
	case "", "AES256":
		if c.KMSKeyID != "" {
			bad("an SSE-KMS key id needs --s3-sse aws:kms")
		}
	case "aws:kms":
	default:
		bad("the server-side encryption %q must be AES256 (SSE-S3) or aws:kms (SSE-KMS)", c.SSE)
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		bad("give both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (to use the AWS credential chain)")
	}
	if c.PartSize != 0 && (c.PartSize < MinPartSize || c.PartSize > MaxPartSize) {
		bad("the S3 part size must be between 5 MiB and 5 GiB, got %d bytes", c.PartSize)
	}
	if c.Concurrency < 0 || c.Concurrency > 64 {
		bad("the S3 upload concurrency must be between 1 and 64, got %d", c.Concurrency)
	}
	if c.StallTimeout < 0 || c.StallTimeout > MaxStallTimeout {
		bad("the S3 stall timeout must be positive and at most 1h, got %s", c.StallTimeout)
	}
	if strings.Contains(c.CACert, "PRIVATE KEY") {
		bad("the S3 CA certificate holds a private key: give only the CA's certificate")
	}
	return errors.Join(errs...)
}
