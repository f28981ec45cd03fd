package release

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// What scripts/* do with the environment and with root, as an operator
// runs them: from a shell that exports a Director's BOSH_* variables, as
// root on a machine without sudo, or as a user with sudo.
var _ = Describe("the scripts", func() {
	scripts := func() []string {
		entries, err := os.ReadDir(filepath.Join(repoRoot(), "scripts"))
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, e := range entries {
			if e.Name() != "lib.sh" {
				names = append(names, e.Name())
			}
		}
		Expect(names).To(ContainElements("demo", "bench", "test", "create-release"))
		return names
	}

	// probe writes a script that sources lib.sh, as every script does,
	// then runs body; it returns its path.
	probe := func(body string) string {
		dir := GinkgoT().TempDir()
		Expect(os.Chmod(dir, 0o755)).To(Succeed())
		path := filepath.Join(dir, "probe")
		script := fmt.Sprintf("#!/usr/bin/env bash\nset -euo pipefail\nsource %q\n%s\n", filepath.Join(repoRoot(), "scripts", "lib.sh"), body)
		Expect(os.WriteFile(path, []byte(script), 0o755)).To(Succeed())
		return path
	}
	goPath := func() string {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		return filepath.Dir(goBin)
	}

	It("each sources lib.sh before it runs anything", func() {
		for _, name := range scripts() {
			raw, err := os.ReadFile(filepath.Join(repoRoot(), "scripts", name))
			Expect(err).NotTo(HaveOccurred())
			var first []string
			for _, l := range strings.Split(string(raw), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "set ") {
					first = append(first, l)
				}
			}
			Expect(first).NotTo(BeEmpty())
			Expect(first[0]).To(Equal(`source "$(dirname "$0")/lib.sh"`), "scripts/%s", name)
		}
	})

	It("start without the caller's BOSH_*, AWS_*, CA_CERT and BBR_* variables, and say which they ignore", func() {
		cmd := exec.Command(probe("env"))
		cmd.Env = []string{
			"PATH=" + goPath() + ":/usr/bin:/bin", "HOME=" + GinkgoT().TempDir(),
			"BOSH_CA_CERT=/nonexistent", "BOSH_ENVIRONMENT=https://127.0.0.9:1", "BOSH_CLIENT_SECRET=s3cret",
			"BOSH_ALL_PROXY=ssh+socks5://jumpbox:22?private-key=/k", "AWS_SECRET_ACCESS_KEY=aws-s3cret",
			"CA_CERT=/nonexistent", "BBR_SCRIPT_TIMEOUT=1s", "BBR_LAB_DIR=/var/lib/other-lab",
		}
		var errOut strings.Builder
		cmd.Stderr = &errOut
		out, err := cmd.Output()
		Expect(err).NotTo(HaveOccurred(), errOut.String())
		Expect(regexp.MustCompile(`(?m)^(BOSH_|AWS_|CA_CERT=|BBR_SCRIPT)`).FindAllString(string(out), -1)).To(BeEmpty())
		Expect(string(out)).To(ContainSubstring("BBR_LAB_DIR=/var/lib/other-lab"), "the scripts' own setting is kept")
		Expect(errOut.String()).To(ContainSubstring("ignoring AWS_SECRET_ACCESS_KEY BBR_SCRIPT_TIMEOUT BOSH_ALL_PROXY BOSH_CA_CERT BOSH_CLIENT_SECRET BOSH_ENVIRONMENT CA_CERT from the environment"))
		Expect(errOut.String()).NotTo(Or(ContainSubstring("s3cret"), ContainSubstring("nonexistent")), "names only")
	})

	Context("needing root", func() {
		BeforeEach(func() {
			if os.Geteuid() != 0 {
				Skip("runs the scripts as another user: needs root (scripts/test runs the suites as root)")
			}
			if _, err := exec.LookPath("setpriv"); err != nil {
				Skip("needs setpriv (util-linux)")
			}
		})

		It("demo and bench run as root at once, without sudo", func() {
			for _, name := range []string{"demo", "bench"} {
				raw, err := os.ReadFile(filepath.Join(repoRoot(), "scripts", name))
				Expect(err).NotTo(HaveOccurred())
				Expect(string(raw)).To(ContainSubstring("\nrun_as_root \"$@\"\n"), "scripts/%s", name)
			}
			// No sudo on the PATH, as on a fresh Debian machine.
			tools := GinkgoT().TempDir()
			for _, t := range []string{"bash", "env", "id", "dirname", "basename"} {
				path, err := exec.LookPath(t)
				Expect(err).NotTo(HaveOccurred())
				Expect(os.Symlink(path, filepath.Join(tools, t))).To(Succeed())
			}
			cmd := exec.Command(probe(`run_as_root "$@"; echo "ran as $(id -u): $*"`), "a", "b c")
			cmd.Env = []string{"PATH=" + tools + ":" + goPath()}
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			Expect(string(out)).To(ContainSubstring("ran as 0: a b c"))
		})

		It("run again through sudo as another user, keeping PATH and BBR_LAB_DIR; without sudo they say what to do", func() {
			tools := GinkgoT().TempDir()
			Expect(os.Chmod(tools, 0o755)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(tools, "sudo"), []byte("#!/bin/sh\nprintf 'sudo:'; printf ' [%s]' \"$@\"; echo\n"), 0o755)).To(Succeed())
			script := probe(`run_as_root "$@"; echo "ran without sudo"`)
			path := tools + ":" + goPath() + ":/usr/bin:/bin"
			cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "PATH="+path, "HOME=/tmp", "BBR_LAB_DIR=/lab", script, "a", "b c")
			cmd.Env = []string{}
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			Expect(string(out)).To(ContainSubstring("sudo: [env] [PATH=" + path + "] [BBR_LAB_DIR=/lab] [" + script + "] [a] [b c]"))
			Expect(string(out)).NotTo(ContainSubstring("ran without sudo"))

			// Without sudo (only the tools the probe needs on the PATH).
			bare := GinkgoT().TempDir()
			Expect(os.Chmod(bare, 0o755)).To(Succeed())
			for _, t := range []string{"bash", "env", "id", "dirname", "basename"} {
				p, err := exec.LookPath(t)
				Expect(err).NotTo(HaveOccurred())
				Expect(os.Symlink(p, filepath.Join(bare, t))).To(Succeed())
			}
			cmd = exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "PATH="+bare+":"+goPath(), "HOME=/tmp", script)
			cmd.Env = []string{"PATH=/usr/bin:/bin"}
			out, _ = cmd.CombinedOutput()
			Expect(cmd.ProcessState.ExitCode()).To(Equal(1), string(out))
			Expect(string(out)).To(ContainSubstring("needs root"))
			Expect(string(out)).To(ContainSubstring("run it as root, or install sudo"))
		})
	})

	It("are documented to run as root or through sudo, without sudo in the command", func() {
		raw, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(MatchRegexp(`sudo scripts/(demo|bench)`))
		Expect(string(raw)).To(MatchRegexp("(?m)^scripts/demo "))
	})
})
