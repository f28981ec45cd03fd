// Package errand is what the release's backup and restore errands run: a
// config file rendered by the job templates, the orchestrator run for each
// deployment, retention of the newest good backups on the jumpbox's
// persistent disk, and a summary an operator can read in the errand output.
package errand

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v2"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/bucket"
	"github.com/bbr-release/bbr/src/remote"
	"github.com/bbr-release/bbr/src/transform"
)

// Config is the errand's config file (the job templates render it).
type Config struct {
	Director Director `yaml:"director"`
	// Deployments to back up; AllDeployments backs up every deployment
	// the Director lists.
	Deployments    []string `yaml:"deployments"`
	AllDeployments bool     `yaml:"all_deployments"`
	// OwnDeployment is the errand's own deployment (the template's
	// spec.deployment): all_deployments leaves it out.
	OwnDeployment string `yaml:"own_deployment"`
	// ArtifactDirectory holds one folder per deployment with its backups.
	ArtifactDirectory string `yaml:"artifact_directory"`
	// KeepLast is how many good backups per deployment retention keeps;
	// 0 keeps them all.
	KeepLast int `yaml:"keep_last"`
	// MaxAgeDays also keeps the good backups younger than this many days
	// (a backup either rule keeps stays); 0: only KeepLast counts.
	MaxAgeDays int `yaml:"max_age_days"`
	// InProgressGraceHours is how long retention leaves a backup in
	// progress alone (it may be running); 0: a day.
	InProgressGraceHours int `yaml:"in_progress_grace_hours"`
	// S3 is the bucket backups go to; nil keeps them on the persistent
	// disk only.
	S3 *S3 `yaml:"s3"`
	// KeepLocalCopy, with S3, backs up to the persistent disk first and
	// then copies the backup to the bucket, keeping both.
	KeepLocalCopy bool `yaml:"keep_local_copy"`
	// ValidateAfterBackup is auto (validate what went to a bucket by
	// reading it back), always (the local copy too) or never.
	ValidateAfterBackup string `yaml:"validate_after_backup"`
	WithManifest        bool   `yaml:"with_manifest"`
	Parallelism         int    `yaml:"parallelism"`
	ScriptTimeout       int    `yaml:"script_timeout_seconds"`
	UnsafeLockFree      bool   `yaml:"unsafe_lock_free"`
	// Compression and Encryption say how new backups are stored, and
	// Encryption how encrypted ones are read (see package transform).
	Compression Compression `yaml:"compression"`
	Encryption  Encryption  `yaml:"encryption"`
	// MetricsDirectory gets each deployment's Prometheus textfile
	// (node_exporter's textfile collector); empty: none.
	MetricsDirectory string `yaml:"metrics_directory"`
	// Webhook is told of failed backups and restores (and of good ones,
	// OnSuccess).
	Webhook struct {
		URL       string `yaml:"url"`
		OnSuccess bool   `yaml:"on_success"`
	} `yaml:"webhook"`
	// Mode is what the restore errand does: restore (the default), or
	// validate the newest good backup of each of Validate.Deployments
	// (every deployment with backups, when empty) without touching any
	// platform.
	Mode     string `yaml:"mode"`
	Validate struct {
		Deployments []string `yaml:"deployments"`
	} `yaml:"validate"`
	// BoshDirector is the Director VM the backup errand backs up too, as
	// `bbr director backup` does; no host: not backed up.
	BoshDirector BoshDirector `yaml:"bosh_director"`
	// Restore names what the restore errand restores.
	Restore struct {
		Deployment string `yaml:"deployment"`
		// Artifact is a backup's directory name; empty means the newest
		// good backup of the deployment.
		Artifact string `yaml:"artifact"`
	} `yaml:"restore"`
}

// Director says how to reach and authenticate to the BOSH Director. Give
// one pair of credentials: Client and ClientSecret (a UAA client), or
// Username and Password (a Director user, basic auth). Either pair is
// passed to bbr as its --username/--password are: the Director's /info
// decides whether it is used for basic auth or as UAA client credentials.
type Director struct {
	// URL is the Director's address; a bare host or host:port gets
	// https:// and the default port 25555, as the bosh CLI does.
	URL          string `yaml:"url"`
	CACert       string `yaml:"ca_cert"`
	Client       string `yaml:"client"`
	ClientSecret string `yaml:"client_secret"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
}

// BoshDirector is the BOSH Director VM, reached over SSH. Its host key
// must be pinned: the errand never trusts a key it is first shown.
type BoshDirector struct {
	// Host is the VM's address, with an optional port (22 when absent).
	// Its host name names the backups (<host>_<timestamp>, upstream's).
	Host       string `yaml:"host"`
	SSHUser    string `yaml:"ssh_user"`
	PrivateKey string `yaml:"private_key"`
	// HostKeys are the VM's SSH host keys: public keys or known_hosts
	// lines, one per line.
	HostKeys string `yaml:"host_keys"`
}

// Name is the Director's name in backups and under artifact_directory.
func (b BoshDirector) Name() string { return remote.HostName(b.Host) }

// SSH is how to reach the VM: its address, user, key and pinned host keys.
func (b BoshDirector) SSH() (remote.Config, error) {
	signer, err := ssh.ParsePrivateKey([]byte(b.PrivateKey))
	if err != nil {
		// Never wrap err: it may quote the key.
		return remote.Config{}, errors.New("bosh_director.private_key is not a usable private key (an unencrypted PEM or OpenSSH key is needed)")
	}
	keys, err := remote.ParseHostKeys(b.HostKeys)
	if err != nil {
		return remote.Config{}, fmt.Errorf("bosh_director.host_keys: %w (give the VM's public host keys, e.g. as ssh-keyscan prints them)", err)
	}
	return remote.Config{
		Addr:              remote.HostAddress(b.Host),
		User:              b.SSHUser,
		Signer:            signer,
		HostKeyCallback:   remote.PinnedHostKeys("bosh_director.host_keys lists", keys...),
		HostKeyAlgorithms: remote.HostKeyAlgorithms(keys...),
	}, nil
}

func (b BoshDirector) validate() error {
	if b.Host == "" {
		if b.PrivateKey != "" || b.HostKeys != "" {
			return errors.New("bosh_director.private_key or host_keys is set but bosh_director.host is not: set the Director VM's host to back it up")
		}
		return nil
	}
	if !boshname.Valid(b.Name()) {
		return fmt.Errorf("bosh_director.host %q: give a host name or an IPv4 address (with an optional :port); its name is the backups' folder", b.Host)
	}
	if b.SSHUser == "" {
		return errors.New("bosh_director.ssh_user is required: the user bbr logs in to the Director VM as (bosh-deployment's bbr.yml creates bbr)")
	}
	_, err := b.SSH()
	return err
}

// Compression stores each file of new backups with zstd.
type Compression struct {
	Enabled bool `yaml:"enabled"`
	Level   int  `yaml:"level"`
}

// Encryption encrypts new backups with age to public keys; Identity, a
// private key, is for the restore errand only (restore and validate).
type Encryption struct {
	Recipients []string `yaml:"recipients"`
	Identity   string   `yaml:"identity"`
}

// Transform is how the errand writes and reads backups.
func (c Config) Transform() (transform.Options, error) {
	o := transform.Options{Compress: c.Compression.Enabled, Level: c.Compression.Level}
	var err error
	if len(c.Encryption.Recipients) > 0 {
		if o.Recipients, err = transform.ParseRecipients(c.Encryption.Recipients); err != nil {
			return o, fmt.Errorf("encryption.recipients: %w", err)
		}
	}
	if c.Encryption.Identity != "" {
		if o.Identities, err = transform.ParseIdentity([]byte(c.Encryption.Identity)); err != nil {
			return o, fmt.Errorf("encryption.identity: %w", err)
		}
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("compression.level: %w", err)
	}
	return o, nil
}

// Credentials returns the configured pair (client or user) as bbr's
// --username and --password.
func (d Director) Credentials() (id, secret string) {
	if d.Username != "" || d.Password != "" {
		return d.Username, d.Password
	}
	return d.Client, d.ClientSecret
}

// S3 is the errand's bucket (see bucket.Config).
type S3 struct {
	Bucket            string `yaml:"bucket"`
	Prefix            string `yaml:"prefix"`
	Endpoint          string `yaml:"endpoint"`
	Region            string `yaml:"region"`
	Addressing        string `yaml:"addressing"`
	CACert            string `yaml:"ca_cert"`
	AccessKeyID       string `yaml:"access_key_id"`
	SecretAccessKey   string `yaml:"secret_access_key"`
	SessionToken      string `yaml:"session_token"`
	SSE               string `yaml:"sse"`
	SSEKMSKeyID       string `yaml:"sse_kms_key_id"`
	PartSizeMiB       int    `yaml:"part_size_mib"`
	UploadConcurrency int    `yaml:"upload_concurrency"`
	// StallTimeoutSeconds: 0 is the bucket's default.
	StallTimeoutSeconds int `yaml:"stall_timeout_seconds"`
}

// Config is the bucket's client configuration.
func (s S3) Config() bucket.Config {
	return bucket.Config{
		Bucket: s.Bucket, Prefix: strings.Trim(s.Prefix, "/"), Endpoint: s.Endpoint, Region: s.Region, Addressing: s.Addressing,
		CACert: s.CACert, AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, SessionToken: s.SessionToken,
		SSE: s.SSE, KMSKeyID: s.SSEKMSKeyID, PartSize: int64(s.PartSizeMiB) << 20, Concurrency: s.UploadConcurrency,
		StallTimeout: time.Duration(s.StallTimeoutSeconds) * time.Second,
	}
}

// Retention is the configured retention.
func (c Config) Retention() artifact.Retention {
	return artifact.Retention{KeepLast: c.KeepLast, MaxAge: time.Duration(c.MaxAgeDays) * 24 * time.Hour,
		InProgressGrace: time.Duration(c.InProgressGraceHours) * time.Hour}
}

// MaxConfig bounds the config file: it is a few lines.
const MaxConfig = 1 << 20

// ParseConfig parses and validates a config file's content.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	if len(raw) > MaxConfig {
		return c, fmt.Errorf("config is %d bytes, more than %d", len(raw), MaxConfig)
	}
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return c, fmt.Errorf("parsing the errand config: %w", err)
	}
	if c.ArtifactDirectory == "" {
		c.ArtifactDirectory = DefaultArtifactDirectory
	}
	if c.Parallelism == 0 {
		c.Parallelism = DefaultParallelism
	}
	if u, ok := normalizeDirectorURL(c.Director.URL); ok {
		c.Director.URL = u
	}
	return c, c.validate()
}

// LoadConfig reads and parses path.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading the errand config: %w", err)
	}
	return ParseConfig(raw)
}
