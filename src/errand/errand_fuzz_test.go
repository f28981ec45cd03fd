package errand

import (
	"path"
	"slices"
	"strings"
	"testing"
)

// FuzzConfig: any input (seeds below and in testdata/fuzz/FuzzConfig) either fails to parse or yields a config whose
// every value is within what the errand accepts.
func FuzzConfig(f *testing.F) {
	f.Add([]byte("director: {url: \"https://10.0.0.6:25555\", client: admin, client_secret: s}\ndeployments: [cf]\nkeep_last: 3\n"))
	f.Add([]byte("director: {url: \"https://d\", client: a, client_secret: b}\nall_deployments: true\nrestore: {deployment: cf, artifact: cf_20261125T080000Z}\n"))
	f.Add([]byte("director: {url: \"https://d\", client: a, client_secret: b, ca_cert: \"-----BEGIN CERTIFICATE-----\\nx\\n\"}\nparallelism: 1000\nscript_timeout_seconds: 60\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfig(raw)
		if err != nil {
			return
		}
		if dir := c.ArtifactDirectory; path.Clean(dir) == "/" || slices.Contains(strings.Split(dir, "/"), "..") {
			t.Fatalf("accepted artifact_directory %q", dir)
		}
		if strings.Contains(c.Director.CACert, "PRIVATE KEY") {
			t.Fatalf("accepted a private key in director.ca_cert")
		}
		if !strings.HasPrefix(c.ArtifactDirectory, "/") || c.KeepLast < 0 || c.Parallelism < 1 || c.Parallelism > 1000 || c.ScriptTimeout < 0 {
			t.Fatalf("accepted out-of-range values: %+v", c)
		}
		for _, d := range append(c.Deployments, c.Restore.Deployment) {
			if d != "" && (strings.Contains(d, "/") || strings.HasPrefix(d, ".")) {
				t.Fatalf("accepted deployment name %q", d)
			}
		}
		if strings.Contains(c.Restore.Artifact, "/") || c.Restore.Artifact == ".." {
			t.Fatalf("accepted restore.artifact %q", c.Restore.Artifact)
		}
		if id, secret := c.Director.Credentials(); id == "" || secret == "" {
			t.Fatalf("accepted a config without credentials")
		}
		if (c.Director.Client != "" || c.Director.ClientSecret != "") && (c.Director.Username != "" || c.Director.Password != "") {
			t.Fatalf("accepted both a client and a user")
		}
		if u, ok := normalizeDirectorURL(c.Director.URL); !ok || u != c.Director.URL {
			t.Fatalf("accepted director.url %q, which does not normalise to itself (%q)", c.Director.URL, u)
		}
	})
}
