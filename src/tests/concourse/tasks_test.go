package concourse_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// recorder stands in for bbr (and bosh) in a task: it records its
// arguments and environment, reads every key file it is given twice (bbr
// reads an identity once to check it and once to restore), and lists the
// files under TMPDIR and the working directory that hold a secret while
// it runs. %[1]q is where it records.
const recorder = `#!/usr/bin/env bash
rec=%[1]q
printf '%%s\n' "$@" > "$rec/argv"
env > "$rec/env"
grep -rlF -f "$rec/secrets" "$TMPDIR" "$PWD" > "$rec/on-disk-while-running" 2>/dev/null
prev=
for a in "$@"; do
  case "$prev" in
  --identity-file|--private-key-path|--known-hosts)
    cat "$a" > "$rec/${prev#--}.1" && cat "$a" > "$rec/${prev#--}.2" ;;
  esac
  prev="$a"
done
exit 0
`

// taskRun is one run of a task script with the recorder as bbr.
type taskRun struct {
	out       string
	code      int
	work, tmp string
	rec       string
	secrets   []string
	toolRan   bool
}

// runTask runs concourse/tasks/<name>/task.sh as Concourse does (a fresh
// working directory with each declared input, an empty folder per
// output, only the declared params in the environment) with the recorder
// as the bbr input and as bosh on the PATH, and TMPDIR a directory of its
// own. secrets are the values that must never reach argv or a file.
func runTask(name string, inputs, params map[string]string, secrets ...string) taskRun {
	repo, err := filepath.Abs(root)
	Expect(err).NotTo(HaveOccurred())
	var t task
	readYAML(filepath.Join(repo, "concourse", "tasks", name, "task.yml"), &t)
	r := taskRun{work: filepath.Join(GinkgoT().TempDir(), "build"), tmp: GinkgoT().TempDir(), rec: GinkgoT().TempDir(), secrets: secrets}
	bin := filepath.Join(r.rec, "bin")
	Expect(os.MkdirAll(bin, 0o755)).To(Succeed())
	Expect(os.MkdirAll(r.work, 0o755)).To(Succeed())
	for _, tool := range []string{"bbr", "bosh"} {
		Expect(os.WriteFile(filepath.Join(bin, tool), fmt.Appendf(nil, recorder, r.rec), 0o755)).To(Succeed())
	}
	var lines []string
	for _, s := range secrets {
		for _, l := range strings.Split(s, "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	Expect(lines).NotTo(BeEmpty())
	Expect(os.WriteFile(filepath.Join(r.rec, "secrets"), []byte(strings.Join(lines, "\n")+"\n"), 0o600)).To(Succeed())

	sources := map[string]string{"bbr": bin, "bbr-tasks": repo}
	for k, v := range inputs {
		sources[k] = v
	}
	for _, in := range t.Inputs {
		src, ok := sources[in.Name]
		Expect(ok).To(BeTrue(), "task %s needs input %s", name, in.Name)
		Expect(os.Symlink(src, filepath.Join(r.work, in.Name))).To(Succeed())
	}
	for _, out := range t.Outputs {
		Expect(os.Mkdir(filepath.Join(r.work, out.Name), 0o755)).To(Succeed())
	}
	env := []string{"PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + r.work, "TMPDIR=" + r.tmp}
	var declared []string
	for k := range t.Params {
		declared = append(declared, k)
	}
	sort.Strings(declared)
	for _, k := range declared {
		v, given := params[k]
		if !given && t.Params[k] != nil {
			v = fmt.Sprint(t.Params[k])
		}
		env = append(env, k+"="+v)
	}
	for k := range params {
		Expect(t.Params).To(HaveKey(k), "task %s does not declare param %s", name, k)
	}
	cmd := exec.Command(filepath.Join(r.work, t.Run.Path))
	cmd.Dir, cmd.Env = r.work, env
	out, err := cmd.CombinedOutput()
	r.out = string(out)
	if exit, ok := err.(*exec.ExitError); ok {
		r.code = exit.ExitCode()
	} else {
		Expect(err).NotTo(HaveOccurred())
	}
	_, err = os.Stat(filepath.Join(r.rec, "argv"))
	r.toolRan = err == nil
	return r
}

func (r taskRun) recorded(name string) string {
	raw, err := os.ReadFile(filepath.Join(r.rec, name))
	Expect(err).NotTo(HaveOccurred(), "the recorder wrote %s", name)
	return string(raw)
}

func (r taskRun) argv() []string {
	return strings.Split(strings.TrimSuffix(r.recorded("argv"), "\n"), "\n")
}

// flagValue is the value given to flag in the recorded argv.
func (r taskRun) flagValue(flag string) string {
	args := r.argv()
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// expectNoSecretLeft checks what every task owes its secrets: none in
// bbr's argv, none in a file under TMPDIR or the working directory,
// neither while bbr ran nor after the task ended.
func (r taskRun) expectNoSecretLeft() {
	Expect(r.toolRan).To(BeTrue(), r.out)
	for _, s := range r.secrets {
		for _, a := range r.argv() {
			Expect(a).NotTo(ContainSubstring(s), "a secret in argv")
		}
		Expect(r.out).NotTo(ContainSubstring(s), "a secret in the output")
	}
	Expect(r.recorded("on-disk-while-running")).To(BeEmpty(), "files holding a secret while bbr ran")
	found, _ := exec.Command("grep", "-rlF", "-f", filepath.Join(r.rec, "secrets"), r.tmp, r.work).Output()
	Expect(string(found)).To(BeEmpty(), "files holding a secret after the task")
	left, err := os.ReadDir(r.tmp)
	Expect(err).NotTo(HaveOccurred())
	Expect(left).To(BeEmpty(), "the task leaves nothing in TMPDIR")
}

// expectReadTwice checks that bbr read the file given to flag, twice,
// and found want in it.
func (r taskRun) expectReadTwice(flag, want string) {
	Expect(r.flagValue("--" + flag)).NotTo(BeEmpty())
	Expect(r.recorded(flag + ".1")).To(Equal(want + "\n"))
	Expect(r.recorded(flag+".2")).To(Equal(want+"\n"), "the file can be read again (bbr checks the identity, then restores)")
}

const (
	identity   = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ7L8C0"
	privateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDirectorKeyNotARealOneButLongEnoughToMatter0000000000000AAAA\n-----END OPENSSH PRIVATE KEY-----"
	knownHosts = "10.0.0.6 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)

var _ = Describe("the task scripts' secrets", func() {
	boshParams := func() map[string]string {
		return map[string]string{"BOSH_ENVIRONMENT": "https://10.0.0.6:25555", "BOSH_CLIENT": "admin",
			"BOSH_CLIENT_SECRET": "client-s3cret-value", "BOSH_DEPLOYMENT": "cf"}
	}
	backupInput := func() map[string]string {
		dir := GinkgoT().TempDir()
		Expect(os.Mkdir(filepath.Join(dir, "cf_20261125T032327Z"), 0o700)).To(Succeed())
		return map[string]string{"backup": dir}
	}

	It("restore: the age identity reaches bbr as a file it can read twice, and is on no disk while bbr runs or after", func() {
		params := boshParams()
		params["BBR_IDENTITY"] = identity
		r := runTask("bbr-restore-deployment", backupInput(), params, identity)
		Expect(r.code).To(Equal(0), r.out)
		r.expectReadTwice("identity-file", identity)
		r.expectNoSecretLeft()
		Expect(r.recorded("env")).NotTo(ContainSubstring(identity), "bbr does not inherit BBR_IDENTITY")
	})

	It("restore: without an identity, gives bbr none", func() {
		r := runTask("bbr-restore-deployment", backupInput(), boshParams(), "client-s3cret-value")
		Expect(r.code).To(Equal(0), r.out)
		Expect(r.argv()).NotTo(ContainElement("--identity-file"))
		Expect(r.argv()).To(ContainElement(HaveSuffix("/backup/cf_20261125T032327Z")))
	})

	directorParams := func() map[string]string {
		return map[string]string{"BOSH_DIRECTOR_HOST": "10.0.0.6", "BOSH_DIRECTOR_PRIVATE_KEY": privateKey, "KNOWN_HOSTS": knownHosts}
	}

	It("director: the SSH key reaches bbr as a file, on no disk while bbr runs or after; the host key is pinned", func() {
		r := runTask("bbr-backup-director", nil, directorParams(), privateKey)
		Expect(r.code).To(Equal(0), r.out)
		r.expectReadTwice("private-key-path", privateKey)
		r.expectReadTwice("known-hosts", knownHosts)
		r.expectNoSecretLeft()
		Expect(r.recorded("env")).NotTo(ContainSubstring("PRIVATE KEY"), "bbr does not inherit BOSH_DIRECTOR_PRIVATE_KEY")
	})

	It("director: refuses to run without KNOWN_HOSTS unless SKIP_HOST_KEY_CHECK=true, saying so", func() {
		params := directorParams()
		params["KNOWN_HOSTS"] = ""
		r := runTask("bbr-backup-director", nil, params, privateKey)
		Expect(r.code).NotTo(Equal(0))
		Expect(r.toolRan).To(BeFalse(), "bbr never ran")
		Expect(r.out).To(And(ContainSubstring("KNOWN_HOSTS"), ContainSubstring("SKIP_HOST_KEY_CHECK=true")))
		Expect(os.ReadDir(r.tmp)).To(BeEmpty())

		params["SKIP_HOST_KEY_CHECK"] = "true"
		r = runTask("bbr-backup-director", nil, params, privateKey)
		Expect(r.code).To(Equal(0), r.out)
		Expect(r.argv()).NotTo(ContainElement("--known-hosts"))
		Expect(r.out).To(ContainSubstring("not verified"), "it says the host key is not checked")
		r.expectNoSecretLeft()
	})

	// Every task, given every secret param it declares: none reaches argv
	// or a file.
	secretParams := map[string]string{
		"BOSH_CLIENT_SECRET": "client-s3cret-value", "AWS_SECRET_ACCESS_KEY": "aws-s3cret-value",
		"BBR_WEBHOOK_URL":           "https://hooks.example.com/services/hook-s3cret-value",
		"BOSH_DIRECTOR_PRIVATE_KEY": privateKey, "BBR_IDENTITY": identity,
	}
	tasks, _ := filepath.Glob(filepath.Join(root, "concourse", "tasks", "*", "task.yml"))
	for _, file := range tasks {
		name := filepath.Base(filepath.Dir(file))
		It(name+": no secret param reaches argv or a file", func() {
			var t task
			readYAML(file, &t)
			params := map[string]string{}
			var secrets []string
			for k, v := range boshParams() {
				if _, ok := t.Params[k]; ok {
					params[k] = v
				}
			}
			for k, v := range directorParams() {
				if _, ok := t.Params[k]; ok {
					params[k] = v
				}
			}
			for k, v := range secretParams {
				if _, ok := t.Params[k]; ok {
					params[k], secrets = v, append(secrets, v)
				}
			}
			r := runTask(name, backupInput(), params, secrets...)
			Expect(r.code).To(Equal(0), r.out)
			r.expectNoSecretLeft()
		})
	}
})
