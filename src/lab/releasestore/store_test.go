package releasestore_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	yaml "go.yaml.in/yaml/v2"

	"github.com/bbr-release/bbr/src/lab/releasestore"
)

// tgz packs files (name -> content; names ending in / are directories).
func tgz(files map[string]string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		Expect(tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg})).To(Succeed())
		_, err := tw.Write([]byte(content))
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(tw.Close()).To(Succeed())
	Expect(zw.Close()).To(Succeed())
	return buf.Bytes()
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// releaseWith is release "2" whose base package is the given files.
func releaseWith(base map[string]string) []byte {
	raw := tgz(base)
	return release("2", func(m *releasestore.Manifest) {
		m.Packages[0].Fingerprint, m.Packages[0].SHA1 = "b2", sha256Digest(raw)
	}, raw)
}

// release is a release tarball: job hello needs package greeter, which
// depends on base. edit may change release.MF before it is packed.
func release(version string, edit func(m *releasestore.Manifest), baseTgz ...[]byte) []byte {
	job := tgz(map[string]string{
		"./job.MF":            "name: hello\ntemplates: {run.erb: bin/run}\npackages: [greeter]\nproperties: {}\n",
		"./templates/run.erb": "#!/bin/sh\necho hello\n",
		"./monit":             "",
	})
	base := tgz(map[string]string{"./packaging": "set -e\necho \"base for $BOSH_PACKAGE_NAME\" > \"$BOSH_INSTALL_TARGET/base.txt\"\n"})
	if len(baseTgz) > 0 {
		base = baseTgz[0]
	}
	greeter := tgz(map[string]string{
		"./packaging":  "set -e\ntest \"$PWD\" = \"$BOSH_COMPILE_TARGET\"\ncat source.txt /var/vcap/packages/base/base.txt > \"$BOSH_INSTALL_TARGET/greeter.txt\"\n",
		"./source.txt": "greeter source\n",
	})
	m := releasestore.Manifest{Name: "tools", Version: version, CommitHash: "abc123",
		Jobs: []releasestore.Item{{Name: "hello", Version: "j1", Fingerprint: "j1", SHA1: sha256Digest(job)}},
		Packages: []releasestore.Item{
			{Name: "base", Version: "b1", Fingerprint: "b1", SHA1: sha256Digest(base)},
			{Name: "greeter", Version: "g1", Fingerprint: "g1", SHA1: sha256Digest(greeter), Dependencies: []string{"base"}},
		}}
	if edit != nil {
		edit(&m)
	}
	mf, err := yaml.Marshal(m)
	Expect(err).NotTo(HaveOccurred())
	return tgz(map[string]string{"./release.MF": string(mf), "./jobs/hello.tgz": string(job),
		"./packages/base.tgz": string(base), "./packages/greeter.tgz": string(greeter)})
}

var _ = Describe("the release store", func() {
	var store *releasestore.Store

	BeforeEach(func() { store = &releasestore.Store{Dir: GinkgoT().TempDir()} })

	upload := func(raw []byte) (releasestore.Manifest, error) { return store.Upload(bytes.NewReader(raw)) }

	It("keeps a release, lists it, matches its packages, and takes the same version again as a no-op", func() {
		m, err := upload(release("1", nil))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Name).To(Equal("tools"))
		Expect(store.Releases()).To(HaveKeyWithValue("tools", HaveLen(1)))
		latest, err := store.Latest("tools")
		Expect(err).NotTo(HaveOccurred())
		Expect(latest.Version).To(Equal("1"))
		Expect(store.Matches(m)).To(ConsistOf("b1", "g1"))
		_, err = upload(release("1", nil))
		Expect(err).NotTo(HaveOccurred())
		_, err = upload(release("1", func(m *releasestore.Manifest) { m.Jobs[0].Fingerprint = "j2" }))
		Expect(err).To(MatchError("Release 'tools/1' already exists with other contents: give the new one another version"))
	})

	It("refuses a job or package whose digest is not release.MF's, with bosh-utils' message", func() {
		_, err := upload(release("1", func(m *releasestore.Manifest) { m.Packages[1].SHA1 = "sha256:" + hex.EncodeToString(make([]byte, 32)) }))
		Expect(err).To(MatchError(MatchRegexp(`^Verifying package 'greeter' \(fingerprint g1\): Expected stream to have digest 'sha256:0{64}' but was 'sha256:[0-9a-f]{64}'$`)))
		Expect(store.Releases()).To(BeEmpty(), "nothing is kept")
	})

	DescribeTable("refuses a release.MF it cannot keep safely",
		func(edit func(m *releasestore.Manifest), want string) {
			_, err := upload(release("1", edit))
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("a path as a name", func(m *releasestore.Manifest) { m.Jobs[0].Name = "../../etc" }, `jobs "../../etc"`),
		Entry("a path as a version", func(m *releasestore.Manifest) { m.Version = "1/../../x" }, `version "1/../../x" must be plain`),
		Entry("a path as a fingerprint", func(m *releasestore.Manifest) { m.Packages[0].Fingerprint = "../b1" }, `fingerprint "../b1"`),
		Entry("a dependency it does not have", func(m *releasestore.Manifest) { m.Packages[1].Dependencies = []string{"nope"} }, "package 'greeter' depends on 'nope'"),
		Entry("a package neither given nor known", func(m *releasestore.Manifest) {
			m.Packages = append(m.Packages, releasestore.Item{Name: "extra", Fingerprint: "e1", SHA1: "sha256:00"})
		}, "package 'extra' (fingerprint e1) is neither in the tarball nor on the Director"),
	)

	Context("compiling, as root", func() {
		BeforeEach(func() {
			if os.Geteuid() != 0 {
				Skip("compiling mounts in a namespace of its own: run as root")
			}
			if _, err := os.Stat("/var/vcap"); err != nil { // bbr-lab up makes it
				Expect(os.Mkdir("/var/vcap", 0o755)).To(Succeed())
				DeferCleanup(os.Remove, "/var/vcap")
			}
		})

		It("compiles what a job needs in dependency order, with dependencies under /var/vcap/packages, once per fingerprint", func() {
			m, err := upload(release("1", nil))
			Expect(err).NotTo(HaveOccurred())
			var log []string
			Expect(store.Compile(context.Background(), m, []string{"hello"}, func(l string, work func() error) error { log = append(log, l); return work() })).To(Succeed())
			Expect(log).To(Equal([]string{"base/b1", "greeter/g1"}))
			out := filepath.Join(GinkgoT().TempDir(), "layout")
			Expect(store.Layout(m, []string{"hello"}, out)).To(Succeed())
			Expect(os.ReadFile(filepath.Join(out, "packages", "greeter", "greeter.txt"))).To(Equal([]byte("greeter source\nbase for base\n")))
			Expect(filepath.Join(out, "packages", "base")).NotTo(BeADirectory(), "only the job's own packages are laid out")
			Expect(filepath.Join(out, "jobs", "hello", "spec")).To(BeARegularFile())
			Expect(filepath.Join(out, "jobs", "hello", "templates", "run.erb")).To(BeARegularFile())
			log = nil
			Expect(store.Compile(context.Background(), m, []string{"hello"}, func(l string, work func() error) error { log = append(log, l); return work() })).To(Succeed())
			Expect(log).To(BeEmpty(), "compiled already")
		})

		It("takes compiled packages from the cache in another store, and says why a packaging script failed", func() {
			cache := GinkgoT().TempDir()
			store.CompileCache = cache
			m, err := upload(release("1", nil))
			Expect(err).NotTo(HaveOccurred())
			Expect(store.Compile(context.Background(), m, []string{"hello"}, func(_ string, work func() error) error { return work() })).To(Succeed())

			other := &releasestore.Store{Dir: GinkgoT().TempDir(), CompileCache: cache}
			_, err = other.Upload(bytes.NewReader(release("1", nil)))
			Expect(err).NotTo(HaveOccurred())
			var log []string
			Expect(other.Compile(context.Background(), m, []string{"hello"}, func(l string, work func() error) error { log = append(log, l); return work() })).To(Succeed())
			Expect(log).To(Equal([]string{"base/b1 (cached)", "greeter/g1 (cached)"}))
			out := filepath.Join(GinkgoT().TempDir(), "layout")
			Expect(other.Layout(m, []string{"hello"}, out)).To(Succeed())
			Expect(os.ReadFile(filepath.Join(out, "packages", "greeter", "greeter.txt"))).To(Equal([]byte("greeter source\nbase for base\n")))

		})

		It("says why a packaging script failed, with its output's end", func() {
			m, err := upload(releaseWith(map[string]string{"./packaging": "echo missing a tool >&2\nexit 7\n"}))
			Expect(err).NotTo(HaveOccurred())
			err = store.Compile(context.Background(), m, []string{"hello"}, func(_ string, work func() error) error { return work() })
			Expect(err).To(MatchError(ContainSubstring("Compiling package 'base': exit status 7:")))
			Expect(err).To(MatchError(ContainSubstring("missing a tool")))
		})
	})
})
