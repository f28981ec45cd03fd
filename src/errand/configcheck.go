package errand

// The checks a config must pass: ranges, names, directories, credentials.

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/report"
)

// Defaults, as the job specs document them.
const (
	DefaultArtifactDirectory = "/var/vcap/store/bbr/artifacts"
	DefaultParallelism       = 20
)

func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, ok := normalizeDirectorURL(c.Director.URL); !ok {
		bad("director.url %q: give the Director's https URL, e.g. https://10.0.0.6:25555", c.Director.URL)
	}
	if err := c.Director.checkCredentials(); err != nil {
		errs = append(errs, err)
	}
	if strings.Contains(c.Director.CACert, "PRIVATE KEY") {
		// Never quote it: this message ends up in the errand's output.
		bad("director.ca_cert holds a private key: give only the CA's certificate (-----BEGIN CERTIFICATE-----...), never its key")
	} else if c.Director.CACert != "" && !strings.Contains(c.Director.CACert, "-----BEGIN CERTIFICATE-----") {
		bad("director.ca_cert must be a PEM certificate")
	}
	if err := c.BoshDirector.validate(); err != nil {
		errs = append(errs, err)
	}
	if name := c.BoshDirector.Name(); c.BoshDirector.Host != "" && slices.Contains(c.Deployments, name) {
		bad("bosh_director.host %s is also in deployments: the Director's backups and that deployment's would share a folder", name)
	}
	if c.AllDeployments && len(c.Deployments) > 0 {
		bad("give either deployments or all_deployments, not both")
	}
	var badNames []string
	for _, d := range c.Deployments {
		if !boshname.Valid(d) {
			badNames = append(badNames, fmt.Sprintf("%q", d))
		}
	}
	if n := len(badNames); n > 0 {
		more := ""
		if n > 5 {
			badNames, more = badNames[:5], fmt.Sprintf(" and %d more", n-5)
		}
		bad("deployment name %s%s: not a BOSH deployment name (letters, digits, '.', '_', '-')", strings.Join(badNames, ", "), more)
	}
	if err := checkArtifactDirectory(c.ArtifactDirectory); err != nil {
		errs = append(errs, err)
	}
	if c.KeepLast < 0 {
		bad("keep_last must be 0 (keep every backup) or more, got %d", c.KeepLast)
	}
	if c.MaxAgeDays < 0 {
		bad("max_age_days must be 0 (no age limit) or more, got %d", c.MaxAgeDays)
	}
	if c.InProgressGraceHours < 0 || c.InProgressGraceHours > 24*365 {
		bad("in_progress_grace_hours must be from 1 to 8760 (0: 24), got %d", c.InProgressGraceHours)
	}
	switch c.ValidateAfterBackup {
	case "", "auto", "always", "never":
	default:
		bad("validate_after_backup must be auto (backups in a bucket), always or never, got %q", c.ValidateAfterBackup)
	}
	if c.S3 != nil {
		if err := c.S3.Config().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("s3: %w", err))
		}
	} else if c.KeepLocalCopy {
		bad("keep_local_copy needs an s3 bucket (s3.bucket): without one every backup stays on the persistent disk anyway")
	}
	if c.Parallelism < 1 || c.Parallelism > 1000 {
		bad("parallelism must be between 1 and 1000, got %d", c.Parallelism)
	}
	if c.ScriptTimeout < 0 {
		bad("script_timeout_seconds must be 0 (no limit) or more, got %d", c.ScriptTimeout)
	}
	if c.UnsafeLockFree && c.AllDeployments {
		bad("unsafe_lock_free cannot be combined with all_deployments")
	}
	if _, err := c.Transform(); err != nil {
		errs = append(errs, err)
	}
	if c.Webhook.URL != "" {
		if err := report.CheckWebhookURL(c.Webhook.URL); err != nil {
			errs = append(errs, fmt.Errorf("webhook.url: %w", err))
		}
	}
	if d := c.MetricsDirectory; d != "" && (!strings.HasPrefix(d, "/") || slices.Contains(strings.Split(d, "/"), "..")) {
		bad("metrics_directory %q must be an absolute path without \"..\"", d)
	}
	switch c.Mode {
	case "", "restore", "validate":
	default:
		bad("mode must be restore or validate, got %q", c.Mode)
	}
	for _, d := range c.Validate.Deployments {
		if !boshname.Valid(d) {
			bad("validate.deployments: %q is not a BOSH deployment name", d)
		}
	}
	if r := c.Restore.Deployment; r != "" && !boshname.Valid(r) {
		bad("restore.deployment %q is not a BOSH deployment name", r)
	}
	if a := c.Restore.Artifact; a != "" && (strings.Contains(a, "/") || a == "." || a == "..") {
		bad("restore.artifact %q must be a backup's directory name, not a path", a)
	}
	return errors.Join(errs...)
}

// systemDirectories must never be artifact_directory: the backup job's
// bin/run makes it 0700 and retention removes backups under it, so it
// must be a folder the errand has to itself. The job templates keep the
// same lists.
var systemDirectories = []string{
	"/", "/bin", "/boot", "/etc", "/home", "/lib", "/lib64", "/mnt", "/opt", "/root", "/sbin", "/srv",
	"/tmp", "/usr", "/var", "/var/lib", "/var/log", "/var/tmp",
	"/var/vcap", "/var/vcap/data", "/var/vcap/store",
}

// managedTrees are written by BOSH, the kernel or bbr itself: backups
// there would be replaced, rotated or cleaned up under the errand's feet.
var managedTrees = []string{
	"/dev", "/proc", "/run", "/sys",
	"/var/vcap/bosh", "/var/vcap/data/jobs", "/var/vcap/data/packages", "/var/vcap/jobs",
	"/var/vcap/monit", "/var/vcap/packages", "/var/vcap/sys",
	"/var/vcap/store/bbr-backup", // bbr's staging directory on backed-up VMs
}

// RefusedArtifactDirectories returns the system directories and the
// managed trees artifact_directory may not be (or, for a tree, be under):
// the one list the job templates' specs check their own copies against.
func RefusedArtifactDirectories() (system, managed []string) {
	return slices.Clone(systemDirectories), slices.Clone(managedTrees)
}

func checkArtifactDirectory(dir string) error {
	const instead = "use a folder of its own on the persistent disk, e.g. " + DefaultArtifactDirectory
	if !strings.HasPrefix(dir, "/") {
		return fmt.Errorf("artifact_directory %q must be an absolute path; %s", dir, instead)
	}
	if slices.Contains(strings.Split(dir, "/"), "..") {
		return fmt.Errorf("artifact_directory %q must not contain \"..\": give the folder's own path; %s", dir, instead)
	}
	clean := path.Clean(dir)
	if slices.Contains(systemDirectories, clean) {
		return fmt.Errorf("artifact_directory %q is a system directory, which must never hold backups (the errand makes it 0700 and prunes backups in it); %s", dir, instead)
	}
	for _, t := range managedTrees {
		if clean == t || strings.HasPrefix(clean, t+"/") {
			return fmt.Errorf("artifact_directory %q is managed by BOSH or bbr (under %s), where backups would not stay; %s", dir, t, instead)
		}
	}
	return nil
}

func (d Director) checkCredentials() error {
	client := d.Client != "" || d.ClientSecret != ""
	user := d.Username != "" || d.Password != ""
	switch {
	case client && user:
		return errors.New("give either director.client and director.client_secret (a UAA client) or director.username and director.password (a Director user), not both")
	case !client && !user:
		return errors.New("no Director credentials: set director.client and director.client_secret (a UAA client), or director.username and director.password (a Director user)")
	case client && (d.Client == "" || d.ClientSecret == ""):
		return errors.New("director.client and director.client_secret are both required (a UAA client and its secret)")
	case user && (d.Username == "" || d.Password == ""):
		return errors.New("director.username and director.password are both required (a Director user and its password)")
	}
	return nil
}

// normalizeDirectorURL accepts what the bosh CLI accepts for a Director
// (https://host:port, host:port, host) and returns https://host:port.
func normalizeDirectorURL(raw string) (string, bool) {
	if strings.TrimSpace(raw) != raw || raw == "" {
		return "", false
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = "25555"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", false
	}
	return "https://" + net.JoinHostPort(u.Hostname(), port), true
}

// CheckBackup says what is missing for the backup errand.
func (c Config) CheckBackup() error {
	if !c.AllDeployments && len(c.Deployments) == 0 && c.BoshDirector.Host == "" {
		return errors.New("nothing to back up: set deployments (a list), all_deployments: true, or bosh_director.host")
	}
	return nil
}

// CheckRestore says what is missing for the restore errand: it never
// guesses which deployment to restore (validating needs none).
func (c Config) CheckRestore() error {
	if c.Restore.Deployment == "" && c.Mode != "validate" {
		return errors.New("restore.deployment is required: the restore errand restores one named deployment and never guesses")
	}
	return nil
}

// ScriptTimeoutDuration is the script timeout as a duration.
func (c Config) ScriptTimeoutDuration() time.Duration {
	return time.Duration(c.ScriptTimeout) * time.Second
}
