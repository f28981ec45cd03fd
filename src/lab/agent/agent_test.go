package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/model"
)

// These specs change /etc/passwd and /etc/sudoers.d: they need root, and
// they only ever touch users named bbrlabtest_*.

func testUser() string {
	var b [6]byte
	_, err := rand.Read(b[:])
	Expect(err).NotTo(HaveOccurred())
	return "bbrlabtest_" + hex.EncodeToString(b[:])
}

// fakeLab lays out instances the agent can serve without starting any
// sshd: the agent only needs each instance's root and authorized_keys dir.
func fakeLab(n int) model.Lab {
	dir, err := os.MkdirTemp("", "bbr-lab-agent-test")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	lab := model.Lab{Dir: dir, Deployments: []model.Deployment{{Name: "dep"}}}
	for i := 0; i < n; i++ {
		p := instance.PathsFor(dir, "dep", "group", i)
		Expect(os.MkdirAll(filepath.Join(p.Root, "bosh_ssh"), 0o755)).To(Succeed())
		Expect(os.MkdirAll(p.AuthorizedKeys, 0o711)).To(Succeed())
		lab.Deployments[0].Instances = append(lab.Deployments[0].Instances,
			model.Instance{Group: "group", Index: i, ID: "id-" + string(rune('a'+i)), Root: p.Root})
	}
	return lab
}

func shadowPassword(user string) string {
	raw, err := os.ReadFile("/etc/shadow")
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Split(line, ":"); len(f) > 1 && f[0] == user {
			return f[1]
		}
	}
	return "<no such user>"
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

var _ = Describe("Agent (as root)", func() {
	var (
		ctx  context.Context
		lab  model.Lab
		ag   *Agent
		user string
		key  string
	)

	BeforeEach(func() {
		if os.Geteuid() != 0 {
			Skip("creates real users: run as root")
		}
		ctx = context.Background()
		lab = fakeLab(3)
		ag = New(lab, GinkgoWriter)
		user, key = testUser(), newPublicKey()
		DeferCleanup(func() {
			if a, ok := mustPasswd()[user]; ok {
				Expect(deleteUser(context.Background(), a)).To(Succeed())
			}
		})
	})

	inst := func(i int) model.Instance { return lab.Deployments[0].Instances[i] }

	It("creates a usable user with the key, a home and passwordless sudo", func() {
		Expect(ag.SetUpSSH(ctx, "dep", inst(0), user, key+" comment")).To(Succeed())

		acct, ok := mustPasswd()[user]
		Expect(ok).To(BeTrue())
		Expect(acct.Comment).To(Equal(Comment))
		Expect(acct.Home).To(Equal("/var/vcap/bosh_ssh/" + user))
		Expect(shadowPassword(user)).To(Equal("*"), "a locked account ('!') cannot log in without PAM")

		keyFile := instance.AuthorizedKeysFile(inst(0), user)
		Expect(os.ReadFile(keyFile)).To(Equal([]byte(key + "\n")))
		Expect(ownerOf(keyFile)).To(Equal(acct.UID), "sshd reads the key file as the user")
		Expect(ownerOf(instance.HomeDir(inst(0), user))).To(Equal(acct.UID))

		sudoers, err := os.ReadFile(sudoersFile(user))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(sudoers)).To(ContainSubstring(user + " ALL=(ALL) NOPASSWD: ALL"))
		st, err := os.Stat(sudoersFile(user))
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o440)))
	})

	It("sets up the same user on several instances at once", func() {
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = ag.SetUpSSH(ctx, "dep", inst(i), user, key)
			}()
		}
		wg.Wait()
		Expect(errs).To(HaveEach(BeNil()))
		for i := range 3 {
			Expect(exists(instance.AuthorizedKeysFile(inst(i), user))).To(BeTrue())
		}
	})

	It("refuses a user it did not make and leaves it alone", func() {
		Expect(ag.SetUpSSH(ctx, "dep", inst(0), "daemon", key)).To(MatchError(ContainSubstring("not made by the lab")))
		Expect(exists(instance.AuthorizedKeysFile(inst(0), "daemon"))).To(BeFalse())
		Expect(exists(sudoersFile("daemon"))).To(BeFalse())
	})

	It("rejects bad input before touching anything", func() {
		Expect(ag.SetUpSSH(ctx, "dep", inst(0), "../../x", key)).To(MatchError(ContainSubstring("invalid user name")))
		Expect(ag.SetUpSSH(ctx, "dep", inst(0), user, "nope")).To(MatchError(ContainSubstring("invalid public key")))
		Expect(mustPasswd()).NotTo(HaveKey(user))
	})

	It("removes the user from each instance and deletes it with its last one", func() {
		for i := range 2 {
			Expect(ag.SetUpSSH(ctx, "dep", inst(i), user, key)).To(Succeed())
		}
		Expect(ag.CleanUpSSH(ctx, "dep", inst(0), "^nomatch")).To(Succeed())
		Expect(exists(instance.AuthorizedKeysFile(inst(0), user))).To(BeTrue())

		Expect(ag.CleanUpSSH(ctx, "dep", inst(0), "^"+user)).To(Succeed())
		Expect(exists(instance.AuthorizedKeysFile(inst(0), user))).To(BeFalse())
		Expect(exists(instance.HomeDir(inst(0), user))).To(BeFalse())
		Expect(mustPasswd()).To(HaveKey(user), "still on instance 1")

		Expect(ag.CleanUpSSH(ctx, "dep", inst(1), "^"+user)).To(Succeed())
		Expect(mustPasswd()).NotTo(HaveKey(user))
		Expect(exists(sudoersFile(user))).To(BeFalse())
	})

	It("sweeps every lab user and sudoers file with nothing in memory", func() {
		if others, _ := labUsers(); len(others) > 0 {
			Skip("another lab's users exist on this machine; SweepAll would remove them")
		}
		Expect(ag.SetUpSSH(ctx, "dep", inst(0), user, key)).To(Succeed())
		stray := filepath.Join(SudoersDir, sudoersPrefix+"gone_user")
		Expect(os.WriteFile(stray, []byte("# left by a crash\n"), 0o440)).To(Succeed())

		Expect(SweepAll(model.Lab{})).To(Succeed())
		Expect(mustPasswd()).NotTo(HaveKey(user))
		Expect(exists(sudoersFile(user))).To(BeFalse())
		Expect(exists(stray)).To(BeFalse())
	})
})

func mustPasswd() map[string]account {
	all, err := readPasswd()
	Expect(err).NotTo(HaveOccurred())
	return all
}

func ownerOf(path string) int {
	st, err := os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	return int(st.Sys().(*syscall.Stat_t).Uid)
}
