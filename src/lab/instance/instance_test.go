package instance_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/lab/agent"
	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/model"
)

// The probe job: bin/start records that it ran and leaves a daemon behind
// (a sleep in its own session, like a real service); bin/stop records that
// it ran.
const probeStart = `#!/bin/bash
set -euo pipefail
source /var/vcap/bosh/instance.env
mkdir -p /var/vcap/sys/run/probe
echo "$(hostname) $INSTANCE_GROUP $INSTANCE_IP" > /var/vcap/sys/run/probe/started
setsid sleep 600 </dev/null >/dev/null 2>&1 &
echo $! > /var/vcap/sys/run/probe/daemon.pid
`

const probeStop = `#!/bin/bash
set -euo pipefail
echo "stopped on $(hostname)" >> /var/vcap/sys/log/probe/stopped
`

// probeSpec writes the probe job and returns a spec for one instance of it
// on a random 127.79.x.y address (away from a running lab's 127.77).
func probeSpec(labDir string) instance.Spec {
	src := filepath.Join(labDir, "release", "jobs", "probe")
	Expect(os.MkdirAll(filepath.Join(src, "bin", "bbr"), 0o755)).To(Succeed())
	// 0644 on purpose: Start must make bin/ scripts executable.
	Expect(os.WriteFile(filepath.Join(src, "bin", "start"), []byte(probeStart), 0o644)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(src, "bin", "stop"), []byte(probeStop), 0o644)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(src, "bin", "bbr", "backup"), []byte("#!/bin/bash\n"), 0o644)).To(Succeed())
	self, err := os.Executable()
	Expect(err).NotTo(HaveOccurred())
	return instance.Spec{
		LabDir:     labDir,
		Deployment: "probe-dep",
		Instance: model.Instance{
			Group: "probe", Index: 0, ID: "11111111-2222-4333-8444-555555555555", Bootstrap: true, AZ: "z1",
			IP:   fmt.Sprintf("127.79.%d.%d", 1+mrand.IntN(250), 1+mrand.IntN(250)),
			Jobs: []string{"probe"},
		},
		Jobs:         map[string]instance.Job{"probe": {Source: src, Properties: map[string]any{"probe": map[string]any{"answer": 42}}}},
		LabBin:       self,
		StartTimeout: 10 * time.Second,
		Log:          GinkgoWriter,
	}
}

func newLabDir() string {
	dir, err := os.MkdirTemp("", "bbr-lab-instance-test")
	Expect(err).NotTo(HaveOccurred())
	// SSH users traverse it to their authorized_keys file.
	Expect(os.Chmod(dir, 0o711)).To(Succeed())
	DeferCleanup(os.RemoveAll, dir)
	return dir
}

// inNamespace lists the processes in mount namespace ns.
func inNamespace(ns string) []int {
	entries, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	var out []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		if got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && got == ns {
			out = append(out, pid)
		}
	}
	return out
}

func readFile(path string) string {
	raw, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	return string(raw)
}

func startProbe() (model.Instance, string) {
	labDir := newLabDir()
	inst, err := instance.Start(context.Background(), probeSpec(labDir))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = instance.KillNamespace(inst.MountNS, time.Second) })
	return inst, labDir
}

var _ = Describe("an instance (as root)", func() {
	BeforeEach(func() {
		if os.Geteuid() != 0 {
			Skip("starts sshd in namespaces and creates users: run as root")
		}
		if _, err := os.Stat(instance.SSHD); err != nil {
			Skip("needs openssh-server")
		}
	})

	It("serves SSH for an agent-made user in its own /var/vcap, and stops completely", func() {
		inst, _ := startProbe()
		hostNS, err := os.Readlink("/proc/self/ns/mnt")
		Expect(err).NotTo(HaveOccurred())
		Expect(inst.MountNS).NotTo(Equal(hostNS))
		Expect(inst.HostPublicKey).To(HavePrefix("ssh-ed25519 "))
		Expect(readFile("/proc/self/mountinfo")).NotTo(ContainSubstring(" /var/vcap "), "the host sees no instance mount")
		Expect(readFile(filepath.Join(inst.Root, "sys/run/probe/started"))).To(Equal("probe-0 probe " + inst.IP + "\n"))

		By("letting in a user made by the agent, with the host key the Director reports")
		lab := model.Lab{Deployments: []model.Deployment{{Name: "probe-dep", Instances: []model.Instance{inst}}}}
		ag := agent.New(lab, GinkgoWriter)
		user, signer, pub := newUser()
		DeferCleanup(func() { _ = agent.New(lab, nil).CleanUpSSH(context.Background(), "probe-dep", inst, "^"+user+"$") })
		Expect(ag.SetUpSSH(context.Background(), "probe-dep", inst, user, pub)).To(Succeed())
		client := dial(inst, user, signer)
		Expect(run(client, "hostname")).To(Equal("probe-0\n"))
		Expect(run(client, "echo $HOME; pwd")).To(Equal(instance.InstanceHome(user) + "\n" + instance.InstanceHome(user) + "\n"))
		Expect(run(client, "ls /var/vcap/jobs")).To(Equal("probe\n"))
		Expect(run(client, "test -x /var/vcap/jobs/probe/bin/bbr/backup && cat /var/vcap/jobs/probe/config/properties.json")).To(ContainSubstring(`"answer": 42`))
		Expect(run(client, "sudo -n true 2>&1 && sudo -n cat /var/vcap/bosh/instance.env")).To(And(
			ContainSubstring("INSTANCE_IP='"+inst.IP+"'"), ContainSubstring("INSTANCE_BOOTSTRAP='true'"), Not(ContainSubstring("sudo:"))))
		client.Close()

		By("removing the user on cleanup")
		Expect(ag.CleanUpSSH(context.Background(), "probe-dep", inst, "^"+user)).To(Succeed())
		Expect(readFile("/etc/passwd")).NotTo(ContainSubstring(user + ":"))
		_, err = sshDial(inst, user, signer)
		Expect(err).To(MatchError(ContainSubstring("unable to authenticate")))

		By("stopping: bin/stop runs inside, then nothing is left in the namespace")
		daemon := strings.TrimSpace(readFile(filepath.Join(inst.Root, "sys/run/probe/daemon.pid")))
		Expect(instance.Stop(context.Background(), inst, GinkgoWriter)).To(Succeed())
		Expect(readFile(filepath.Join(inst.Root, "sys/log/probe/stopped"))).To(Equal("stopped on probe-0\n"))
		Expect(inNamespace(inst.MountNS)).To(BeEmpty())
		// Gone, or a zombie until init reaps it.
		Eventually(func() string { return processState(daemon) }).Should(Or(BeEmpty(), Equal("Z")))
		Expect(instance.Stop(context.Background(), inst, GinkgoWriter)).To(Succeed(), "stopping twice is fine")
	})

	It("stops an instance whose sshd crashed", func() {
		inst, _ := startProbe()
		Expect(syscall.Kill(inst.SSHDPid, syscall.SIGKILL)).To(Succeed())
		Eventually(func() int { return len(inNamespace(inst.MountNS)) }).Should(Equal(1), "only the daemon is left")

		Expect(instance.Stop(context.Background(), inst, GinkgoWriter)).To(Succeed())
		Expect(readFile(filepath.Join(inst.Root, "sys/log/probe/stopped"))).To(Equal("stopped on probe-0\n"))
		Expect(inNamespace(inst.MountNS)).To(BeEmpty())
	})

	It("sweeps a lab's instances without lab.json", func() {
		inst, labDir := startProbe()
		n, err := instance.Sweep(filepath.Join(labDir, "other-lab"))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeZero(), "another lab directory's instances are not ours")
		Expect(inNamespace(inst.MountNS)).NotTo(BeEmpty())

		n, err = instance.Sweep(labDir)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(1))
		Expect(inNamespace(inst.MountNS)).To(BeEmpty())
	})

	It("fails cleanly when a job does not start", func() {
		spec := probeSpec(newLabDir())
		start := filepath.Join(spec.Jobs["probe"].Source, "bin", "start")
		Expect(os.WriteFile(start, []byte(probeStart+"echo broken >&2; exit 3\n"), 0o755)).To(Succeed())
		_, err := instance.Start(context.Background(), spec)
		Expect(err).To(MatchError(And(ContainSubstring("starting job probe"), ContainSubstring("exit status 3"))))
		conn, dialErr := net.DialTimeout("tcp", spec.Instance.IP+":22", time.Second)
		if dialErr == nil {
			conn.Close()
		}
		Expect(dialErr).To(HaveOccurred())
	})

	It("refuses to run instance-init in the host's namespace", func() {
		self, err := os.Executable()
		Expect(err).NotTo(HaveOccurred())
		spec := filepath.Join(newLabDir(), "init.json")
		hostNS, err := os.Readlink("/proc/self/ns/mnt")
		Expect(err).NotTo(HaveOccurred())
		initSpec := fmt.Sprintf(`{"hostname":"x","root":"/nonexistent","jobs":[],"host_mount_ns":%q}`, hostNS)
		Expect(os.WriteFile(spec, []byte(initSpec), 0o600)).To(Succeed())
		out, err := exec.Command(self, "instance-init", "--spec", spec).CombinedOutput()
		Expect(err).To(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("its own mount namespace"))
	})
})

// processState is the state letter of pid ("" when gone).
func processState(pid string) string {
	raw, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return ""
	}
	// pid (comm) S ...
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	return fields[0]
}

func newUser() (string, ssh.Signer, string) {
	var b [6]byte
	_, err := rand.Read(b[:])
	Expect(err).NotTo(HaveOccurred())
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	signer, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	return "bbrlabtest_" + hex.EncodeToString(b[:]), signer, string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

func sshDial(inst model.Instance, user string, signer ssh.Signer) (*ssh.Client, error) {
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(inst.HostPublicKey))
	Expect(err).NotTo(HaveOccurred())
	return ssh.Dial("tcp", net.JoinHostPort(inst.IP, "22"), &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(hostKey),
		HostKeyAlgorithms: []string{hostKey.Type()},
		Timeout:           5 * time.Second,
	})
}

func dial(inst model.Instance, user string, signer ssh.Signer) *ssh.Client {
	client, err := sshDial(inst, user, signer)
	Expect(err).NotTo(HaveOccurred())
	return client
}

func run(client *ssh.Client, cmd string) string {
	session, err := client.NewSession()
	Expect(err).NotTo(HaveOccurred())
	defer session.Close()
	var out, errOut bytes.Buffer
	session.Stdout, session.Stderr = &out, &errOut
	Expect(session.Run(cmd)).To(Succeed(), "%s: %s", cmd, errOut.String())
	return out.String()
}
