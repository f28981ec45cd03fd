package release

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gopkg.in/yaml.v3"
)

// releaseManifest is the part of a release tarball's release.MF read here.
type releaseManifest struct {
	Name     string `yaml:"name"`
	Version  string `yaml:"version"`
	Packages []struct {
		Name         string   `yaml:"name"`
		Fingerprint  string   `yaml:"fingerprint"`
		Dependencies []string `yaml:"dependencies"`
	} `yaml:"packages"`
	Jobs []struct {
		Name string `yaml:"name"`
	} `yaml:"jobs"`
}

// These specs take the dev release tarball (the one scripts/test made, named
// by BBR_RELEASE_TARBALL, or one made here with scripts/create-release) and
// compile its packages the way a BOSH compilation VM does: each package's
// archive unpacked into its own BOSH_COMPILE_TARGET, `bash -x packaging` run
// there with a clean environment, the result installed into
// BOSH_INSTALL_TARGET, a link under BOSH_PACKAGES_DIR (as
// /var/vcap/packages/NAME is), where the packages that depend on it find it.
var _ = Describe("The release's packages, compiled as on a compilation VM", Ordered, func() {
	var (
		root        string
		extracted   string
		manifest    releaseManifest
		packagesDir string
		compileLogs = map[string]string{}
	)

	BeforeAll(func() {
		root = repoRoot()
		tarball := os.Getenv("BBR_RELEASE_TARBALL")
		if tarball == "" {
			tarball = createDevRelease(root, GinkgoT().TempDir())
		}
		Expect(tarball).To(BeAnExistingFile(), "BBR_RELEASE_TARBALL")

		extracted = GinkgoT().TempDir()
		run(extracted, "tar", "-xzf", tarball)
		raw, err := os.ReadFile(filepath.Join(extracted, "release.MF"))
		Expect(err).NotTo(HaveOccurred())
		Expect(yaml.Unmarshal(raw, &manifest)).To(Succeed())
		packagesDir = filepath.Join(GinkgoT().TempDir(), "packages")
		Expect(os.MkdirAll(packagesDir, 0o755)).To(Succeed())
	})

	It("is the bbr release with both packages and every job of jobs/", func() {
		Expect(manifest.Name).To(Equal("bbr"))
		var names []string
		for _, p := range manifest.Packages {
			names = append(names, p.Name)
		}
		Expect(names).To(ConsistOf("bbr", "golang-1.26-linux"))

		specs, err := filepath.Glob(filepath.Join(root, "jobs", "*", "spec"))
		Expect(err).NotTo(HaveOccurred())
		var want, got []string
		for _, s := range specs {
			want = append(want, filepath.Base(filepath.Dir(s)))
		}
		for _, j := range manifest.Jobs {
			got = append(got, j.Name)
		}
		Expect(got).To(ConsistOf(want))
	})

	It("compiles every package in dependency order, offline", func() {
		compiled := map[string]bool{}
		for len(compiled) < len(manifest.Packages) {
			progress := false
			for _, p := range manifest.Packages {
				if compiled[p.Name] || !allIn(p.Dependencies, compiled) {
					continue
				}
				start := time.Now()
				compileLogs[p.Name] = compilePackage(extracted, packagesDir, p.Name, p.Fingerprint)
				elapsed := time.Since(start).Round(100 * time.Millisecond)
				AddReportEntry(fmt.Sprintf("compile %s", p.Name), elapsed.String())
				fmt.Fprintf(GinkgoWriter, "compiled %s in %s\n", p.Name, elapsed)
				compiled[p.Name] = true
				progress = true
			}
			Expect(progress).To(BeTrue(), "a package depends on one that is not in the release")
		}
	})

	It("installs a working Go toolchain", func() {
		out := run(root, filepath.Join(packagesDir, "golang-1.26-linux", "bin", "go"), "version")
		Expect(out).To(ContainSubstring("go1.26.8 linux/amd64"))
	})

	It("installs bin/bbr with the release's VERSION stamped in", func() {
		version, err := os.ReadFile(filepath.Join(root, "VERSION"))
		Expect(err).NotTo(HaveOccurred())
		bbr := filepath.Join(packagesDir, "bbr", "bin", "bbr")
		out := run(root, bbr, "version")
		Expect(strings.TrimSpace(out)).To(Equal("bbr version " + strings.TrimSpace(string(version))))
	})

	It("builds bbr as a static binary that needs nothing from the stemcell", func() {
		f, err := elf.Open(filepath.Join(packagesDir, "bbr", "bin", "bbr"))
		Expect(err).NotTo(HaveOccurred())
		defer f.Close()
		for _, p := range f.Progs {
			Expect(p.Type).NotTo(Equal(elf.PT_INTERP), "bbr has a dynamic loader")
		}
		libs, err := f.ImportedLibraries()
		Expect(err).NotTo(HaveOccurred())
		Expect(libs).To(BeEmpty())
	})

	It("compiles bbr from vendored modules only", func() {
		Expect(compileLogs["bbr"]).To(ContainSubstring("GOPROXY=off"))
		Expect(compileLogs["bbr"]).To(ContainSubstring("-mod=vendor"))
	})
})

// compilePackage does what the BOSH agent does for one package: unpack its
// archive into a fresh compile directory and run its packaging script there.
// The install target is a versioned directory, linked from packagesDir/NAME.
// It returns the script's output.
func compilePackage(extracted, packagesDir, name, fingerprint string) string {
	base := filepath.Dir(packagesDir)
	compileTarget := filepath.Join(base, "compile", name)
	installTarget := filepath.Join(base, "data", "packages", name, fingerprint)
	Expect(os.MkdirAll(compileTarget, 0o755)).To(Succeed())
	Expect(os.MkdirAll(installTarget, 0o755)).To(Succeed())
	Expect(os.Symlink(installTarget, filepath.Join(packagesDir, name))).To(Succeed())
	run(compileTarget, "tar", "-xzf", filepath.Join(extracted, "packages", name+".tgz"))

	cmd := exec.Command("bash", "-x", "packaging")
	cmd.Dir = compileTarget
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(base, "home"),
		"BOSH_COMPILE_TARGET=" + compileTarget,
		"BOSH_INSTALL_TARGET=" + filepath.Join(packagesDir, name),
		"BOSH_PACKAGE_NAME=" + name,
		"BOSH_PACKAGE_VERSION=" + fingerprint,
		"BOSH_PACKAGES_DIR=" + packagesDir,
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	fmt.Fprintf(GinkgoWriter, "packaging %s:\n%s\n", name, tail(out.String(), 40))
	Expect(err).NotTo(HaveOccurred(), "packaging of %s failed:\n%s", name, tail(out.String(), 60))
	return out.String()
}

// createDevRelease makes a dev release tarball with scripts/create-release.
// Only when the Go toolchain blob cannot be fetched (no module proxy) are the
// specs skipped; scripts/test always passes a tarball, so CI never skips.
func createDevRelease(root, dir string) string {
	fetch := exec.Command(filepath.Join(root, "scripts", "fetch-go-blob"))
	fetch.Dir = root
	if out, err := fetch.CombinedOutput(); err != nil {
		Skip(fmt.Sprintf("cannot fetch the Go toolchain blob from the module proxy, so no release to compile:\n%s", out))
	}
	tarball := filepath.Join(dir, "bbr-dev.tgz")
	run(root, filepath.Join(root, "scripts", "create-release"), "--tarball", tarball)
	return tarball
}

func repoRoot() string {
	dir, err := os.Getwd()
	Expect(err).NotTo(HaveOccurred())
	for {
		if _, err := os.Stat(filepath.Join(dir, "config", "final.yml")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		Expect(parent).NotTo(Equal(dir), "no release directory (config/final.yml) above the test")
		dir = parent
	}
}

func run(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s %s:\n%s", name, strings.Join(args, " "), tail(string(out), 60))
	return string(out)
}

func allIn(names []string, set map[string]bool) bool {
	for _, n := range names {
		if !set[n] {
			return false
		}
	}
	return true
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = append([]string{"..."}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}
