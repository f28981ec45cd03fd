package instance_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/instance"
	"github.com/bbr-release/bbr/src/remote"
)

// shell runs the protocol's commands in a local sh, as an instance's
// login shell would, with a sudo that only passes the environment on.
type shell struct {
	path string
	// answer, when set, replaces every command's output.
	answer string
}

func (s *shell) Run(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Env = []string{"PATH=" + s.path}
	c.Stdin = stdin
	if stdout == nil {
		stdout = io.Discard
	}
	c.Stdout = stdout
	if s.answer != "" {
		c = exec.CommandContext(ctx, "printf", "%s", s.answer)
		c.Stdout = stdout
	}
	var stderr bytes.Buffer
	c.Stderr = &stderr
	err := c.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return &remote.ExitError{Code: exit.ExitCode(), Stderr: stderr.String()}
	}
	return err
}

func (s *shell) Close() error { return nil }

var _ = Describe("the instance protocol, spoken to a real shell", func() {
	var (
		root string
		sh   *shell
		conn *instance.Conn
		ctx  = context.Background()
	)

	writeScript := func(job, script, body string) {
		p := filepath.Join(root, "jobs", job, "bin", "bbr", script)
		Expect(os.MkdirAll(filepath.Dir(p), 0o755)).To(Succeed())
		Expect(os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755)).To(Succeed())
	}

	BeforeEach(func() {
		root = GinkgoT().TempDir()
		bin := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(bin, "sudo"), []byte("#!/bin/sh\nexec env \"$@\"\n"), 0o755)).To(Succeed())
		sh = &shell{path: bin + ":" + os.Getenv("PATH")}
		conn = instance.NewAt(sh, root)
	})

	Describe("finding scripts", func() {
		It("lists each job's bbr scripts and ignores other files and the legacy mysql jobs", func() {
			writeScript("redis", "backup", "true")
			writeScript("redis", "restore", "true")
			writeScript("redis", "README", "")
			writeScript("mysql-backup", "backup", "true")
			Expect(os.MkdirAll(filepath.Join(root, "jobs", "nobbr", "bin"), 0o755)).To(Succeed())
			scripts, err := conn.FindScripts(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(scripts).To(Equal(instance.Scripts{"redis": {"backup": true, "restore": true}}))
		})

		It("finds nothing, without failing, when there are no jobs", func() {
			Expect(conn.FindScripts(ctx)).To(BeEmpty())
		})

		DescribeTable("refuses a job directory whose name BOSH would not make, and runs nothing of it",
			func(name string) {
				marker := filepath.Join(root, "pwned")
				writeScript(name, "backup", "touch "+marker)
				_, err := conn.FindScripts(ctx)
				Expect(err).To(MatchError(ContainSubstring("refusing job name %q", name)))
				Expect(marker).NotTo(BeAnExistingFile())
			},
			Entry("a command", "evil;touch pwned;x"),
			Entry("a substitution", "evil$(id)"),
			Entry("a space", "two words"),
			Entry("a newline", "new\nline"),
			Entry("a leading dash", "-rf"),
		)
	})

	It("tells a user with processes from one without, or without an account", func() {
		me, err := user.Current()
		Expect(err).NotTo(HaveOccurred())
		Expect(conn.UserActive(ctx, me.Username)).To(BeTrue(), "this test runs as it")
		Expect(conn.UserActive(ctx, "bosh_0123456789abcde")).To(BeFalse())
		sh.answer = "Welcome\n"
		_, err = conn.UserActive(ctx, me.Username)
		Expect(err).To(MatchError(ContainSubstring("unexpected answer")))
	})

	Describe("running scripts", func() {
		It("runs the script as root with the environment, quoted", func() {
			writeScript("j", "backup", `printf '%s|%s' "$BBR_ARTIFACT_DIRECTORY" "$X"`)
			var out bytes.Buffer
			Expect(conn.RunScript(ctx, instance.ScriptRun{Job: "j", Script: "backup", Stdout: &out,
				Env: map[string]string{"BBR_ARTIFACT_DIRECTORY": "/a dir/", "X": "it's $(id)"}})).To(Succeed())
			Expect(out.String()).To(Equal("/a dir/|it's $(id)"))
		})

		It("refuses a job or a script that is not one, and an environment name that is not a name", func() {
			Expect(conn.RunScript(ctx, instance.ScriptRun{Job: "..", Script: "backup"})).To(MatchError(ContainSubstring(`refusing job name ".."`)))
			Expect(conn.RunScript(ctx, instance.ScriptRun{Job: "j", Script: "../../bin/sh"})).To(MatchError(ContainSubstring("is not a bbr script")))
			Expect(conn.RunScript(ctx, instance.ScriptRun{Job: "j", Script: "backup", Env: map[string]string{"A;B": "x"}})).To(MatchError(ContainSubstring(`refusing environment variable name "A;B"`)))
		})

		It("reports a script that exits 124 itself as failed, not as timed out", func() {
			writeScript("j", "backup", "exit 124")
			err := conn.RunScript(ctx, instance.ScriptRun{Job: "j", Script: "backup", Timeout: time.Minute})
			Expect(err).To(MatchError(ContainSubstring("exit code 124")))
			Expect(err.Error()).NotTo(ContainSubstring("timed out"))
		})

		It("ends a script that outlives the script timeout and says so", func() {
			writeScript("j", "backup", "exec sleep 30")
			err := conn.RunScript(ctx, instance.ScriptRun{Job: "j", Script: "backup", Timeout: time.Second})
			Expect(err).To(MatchError(ContainSubstring("backup timed out after 1s (the script timeout)")))
		})
	})

	Describe("the staging directory", func() {
		staging := func() string { return filepath.Join(root, "store", "bbr-backup") }

		It("is claimed once, 0711 (not listable), with an owner file the next claim reads", func() {
			claimed, holder, err := conn.ClaimStaging(ctx, instance.OwnerText("bosh_0123456789abcde", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)))
			Expect(err).NotTo(HaveOccurred())
			Expect(claimed).To(BeTrue())
			Expect(holder).To(BeNil())
			info, err := os.Stat(staging())
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o711)))

			claimed, holder, err = conn.ClaimStaging(ctx, "another")
			Expect(err).NotTo(HaveOccurred())
			Expect(claimed).To(BeFalse())
			Expect(holder.User()).To(Equal("bosh_0123456789abcde"))
			Expect(holder.Owner).To(Equal("bbr run of SSH user bosh_0123456789abcde, started 2026-12-01T00:00:00Z"))
			Expect((&instance.Holder{Owner: instance.OwnerText("", time.Now())}).User()).To(BeEmpty(), "director mode names no user")
			Expect(conn.CheckStaging(ctx)).To(Equal(holder))
		})

		It("is free when it does not exist", func() {
			Expect(conn.CheckStaging(ctx)).To(BeNil())
		})

		DescribeTable("is another run's, never free, when the instance answers something else",
			func(answer string) {
				sh.answer = answer
				_, holder, err := conn.ClaimStaging(ctx, "me")
				Expect(holder).To(BeNil())
				Expect(err).To(MatchError(ContainSubstring("unexpected answer")))
				_, err = conn.CheckStaging(ctx)
				Expect(err).To(MatchError(ContainSubstring("unexpected answer")))
			},
			Entry("a message of the day", "Welcome to Ubuntu\n"),
			Entry("a warning before the answer", "sudo: unable to resolve host\nclaimed\n"),
		)

		It("makes job directories 0700, streams them out and in, checksums and removes them", func() {
			_, _, err := conn.ClaimStaging(ctx, "me")
			Expect(err).NotTo(HaveOccurred())
			Expect(conn.MakeStagingDir(ctx, "j")).To(Succeed())
			info, err := os.Stat(filepath.Join(staging(), "j"))
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o700)))
			Expect(os.WriteFile(filepath.Join(staging(), "j", "a file"), []byte("data"), 0o600)).To(Succeed())

			var tar bytes.Buffer
			Expect(conn.StreamOut(ctx, "j", &tar)).To(Succeed())
			sums, err := conn.Checksums(ctx, "j")
			Expect(err).NotTo(HaveOccurred())
			Expect(sums).To(HaveKeyWithValue("./a file", "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"))

			Expect(conn.StreamIn(ctx, "k", &tar)).To(Succeed())
			info, err = os.Stat(filepath.Join(staging(), "k"))
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o700)))
			Expect(conn.Checksums(ctx, "k")).To(Equal(sums))

			Expect(conn.RemoveStagingDir(ctx, "j")).To(Succeed())
			Expect(filepath.Join(staging(), "j")).NotTo(BeADirectory())
			Expect(conn.RemoveStaging(ctx)).To(Succeed())
			Expect(staging()).NotTo(BeADirectory())
		})

		It("keeps a restored job directory 0700 when the archive says 0755, as upstream's do", func() {
			_, _, err := conn.ClaimStaging(ctx, "me")
			Expect(err).NotTo(HaveOccurred())
			src := GinkgoT().TempDir()
			Expect(os.Chmod(src, 0o755)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)).To(Succeed())
			tarball, err := exec.Command("tar", "-C", src, "-c", ".").Output()
			Expect(err).NotTo(HaveOccurred())
			Expect(conn.StreamIn(ctx, "j", bytes.NewReader(tarball))).To(Succeed())
			info, err := os.Stat(filepath.Join(staging(), "j"))
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o700)))
			Expect(filepath.Join(staging(), "j", "f")).To(BeARegularFile())
		})

		It("extracts nothing through a symbolic link, even one bbr's checks did not refuse", func() {
			// The checks refuse such a tar before it is sent (artifact.SumTar);
			// this is what the instance's own extraction does if one ever
			// gets through: GNU tar never writes through a link it made.
			outside := GinkgoT().TempDir()
			src := GinkgoT().TempDir()
			Expect(os.Symlink(outside, filepath.Join(src, "s"))).To(Succeed())
			Expect(os.Symlink("sub/../..", filepath.Join(src, "r"))).To(Succeed())
			first, err := exec.Command("tar", "-C", src, "-c", ".").Output()
			Expect(err).NotTo(HaveOccurred())
			Expect(os.Remove(filepath.Join(src, "s"))).To(Succeed())
			Expect(os.Remove(filepath.Join(src, "r"))).To(Succeed())
			for _, d := range []string{"s", "r"} {
				Expect(os.Mkdir(filepath.Join(src, d), 0o755)).To(Succeed())
				Expect(os.WriteFile(filepath.Join(src, d, "pwned.txt"), []byte("x"), 0o644)).To(Succeed())
			}
			second, err := exec.Command("tar", "-C", src, "-c", "./s/pwned.txt", "./r/pwned.txt").Output()
			Expect(err).NotTo(HaveOccurred())
			evil := append(first[:bytes.Index(first, make([]byte, 1024))], second...)

			_, _, err = conn.ClaimStaging(ctx, "me")
			Expect(err).NotTo(HaveOccurred())
			Expect(conn.StreamIn(ctx, "j", bytes.NewReader(evil))).NotTo(Succeed())
			Expect(filepath.Join(outside, "pwned.txt")).NotTo(BeAnExistingFile())
			Expect(filepath.Join(staging(), "pwned.txt")).NotTo(BeAnExistingFile())
		})

		It("refuses staging names that could leave the staging root", func() {
			for _, name := range []string{"..", "../..", "a/b", "", "-rf"} {
				Expect(conn.RemoveStagingDir(ctx, name)).To(MatchError(ContainSubstring("refusing staging directory name")), name)
				Expect(conn.StreamIn(ctx, name, strings.NewReader(""))).To(HaveOccurred(), name)
				Expect(conn.MakeStagingDir(ctx, name)).To(HaveOccurred(), name)
			}
			Expect(filepath.Join(root, "store")).NotTo(BeADirectory())
		})
	})
})
