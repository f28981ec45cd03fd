package errand

import (
	"strings"
	"testing"
)

// FuzzConfig: any input either fails to parse or yields a config whose
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
		if c.Director.Client == "" || c.Director.ClientSecret == "" {
			t.Fatalf("accepted a config without credentials")
		}
	})
}
