package director_test

import (
	"errors"
	"time"

	boshdir "github.com/cloudfoundry/bosh-cli/v7/director"
	boshuaa "github.com/cloudfoundry/bosh-cli/v7/uaa"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// These specs drive the lab Director with bosh-cli's own director and uaa
// packages, the client of the bosh CLI and of bbr: if bosh-cli parses what
// the lab sends, so do they.

var _ = Describe("the lab Director, seen by bosh-cli", func() {
	var agent *fakeAgent

	BeforeEach(func() { agent = &fakeAgent{} })

	for _, auth := range []string{"basic", "uaa"} {
		Context("in "+auth+" mode", func() {
			var (
				lab labDirector
				dir boshdir.Director
			)

			BeforeEach(func() {
				lab = startDirector(auth, agent)
				dir = lab.boshClient(client, secret, nil)
			})

			It("answers /info without credentials, naming the auth type", func() {
				info, err := lab.anonymousClient().Info()
				Expect(err).NotTo(HaveOccurred())
				Expect(info.Name).To(Equal("bbr-lab"))
				Expect(info.Version).To(Equal("282.0.0 (00000000)"))
				Expect(info.UUID).To(MatchRegexp(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`))
				Expect(info.CPI).To(Equal("lab"))
				Expect(info.User).To(BeEmpty())
				Expect(info.Auth.Type).To(Equal(auth))
				Expect(info.Features).To(HaveKeyWithValue("snapshots", false))
				if auth == "uaa" {
					Expect(info.Auth.Options).To(HaveKeyWithValue("url", lab.UAAURL))
				}
			})

			It("names the user in /info when the credentials are valid", func() {
				info, err := dir.Info()
				Expect(err).NotTo(HaveOccurred())
				Expect(info.User).To(Equal(client))
				Expect(dir.IsAuthenticated()).To(BeTrue())
			})

			It("lists the deployments with their releases and stemcells", func() {
				deps, err := dir.Deployments()
				Expect(err).NotTo(HaveOccurred())
				Expect(deps).To(HaveLen(2))
				Expect(deps[0].Name()).To(Equal("sample"))
				Expect(deps[1].Name()).To(Equal("other"))

				rels, err := deps[0].Releases()
				Expect(err).NotTo(HaveOccurred())
				Expect(rels).To(HaveLen(2))
				Expect(rels[0].Name()).To(Equal("lab-sample"))
				Expect(rels[0].Version().String()).To(Equal("0+dev.1"))
				Expect(rels[1].Version().String()).To(Equal("1.10"))
				stems, err := deps[0].Stemcells()
				Expect(err).NotTo(HaveOccurred())
				Expect(stems).To(HaveLen(1))
				Expect(stems[0].Name()).To(Equal("bosh-lab-ubuntu-jammy-go_agent"))

				list, err := dir.ListDeployments()
				Expect(err).NotTo(HaveOccurred())
				Expect(list[1].Releases).To(Equal([]boshdir.DeploymentReleaseResp{{Name: "other", Version: "3"}}))
				Expect(list[1].CloudConfig).To(Equal("none"))
			})

			It("returns the raw manifest", func() {
				dep, err := dir.FindDeployment("sample")
				Expect(err).NotTo(HaveOccurred())
				Expect(dep.Manifest()).To(Equal(sampleManifest))
			})

			It("lists the VMs through a task", func() {
				dep, err := dir.FindDeployment("sample")
				Expect(err).NotTo(HaveOccurred())
				vms, err := dep.VMInfos()
				Expect(err).NotTo(HaveOccurred())
				Expect(vms).To(HaveLen(3))

				r1 := vms[1]
				Expect(r1.JobName).To(Equal("redis"))
				Expect(r1.ID).To(Equal("id-r1"))
				Expect(*r1.Index).To(Equal(1))
				Expect(r1.Bootstrap).To(BeFalse())
				Expect(r1.IPs).To(Equal([]string{"127.77.1.11"}))
				Expect(r1.AZ).To(Equal("z2"))
				Expect(r1.VMType).To(Equal("small"))
				Expect(r1.Deployment).To(Equal("sample"))
				Expect(*r1.Active).To(BeTrue())
				Expect(r1.IsRunning()).To(BeTrue())
				Expect(r1.AgentID).NotTo(BeEmpty())
				Expect(r1.VMCreatedAt).To(BeTemporally("~", time.Now(), time.Minute))

				Expect(vms[0].Bootstrap).To(BeTrue())
				Expect(vms[2].JobName).To(Equal("api"))
				Expect(*vms[2].Index).To(Equal(0))
			})

			It("lists the instances through a task", func() {
				dep, err := dir.FindDeployment("other")
				Expect(err).NotTo(HaveOccurred())
				infos, err := dep.InstanceInfos()
				Expect(err).NotTo(HaveOccurred())
				Expect(infos).To(HaveLen(1))
				Expect(infos[0].ID).To(Equal("id-d0"))
				Expect(infos[0].IsRunning()).To(BeTrue())
			})

			It("sets up an SSH user on every instance of a group and returns the host keys", func() {
				dep, err := dir.FindDeployment("sample")
				Expect(err).NotTo(HaveOccurred())
				res, err := dep.SetUpSSH(boshdir.NewAllOrInstanceGroupOrInstanceSlug("redis", ""), boshdir.SSHOpts{Username: "bbr-abc", PublicKey: userKey})
				Expect(err).NotTo(HaveOccurred())
				Expect(res.Hosts).To(ConsistOf(
					boshdir.Host{Job: "redis", IndexOrID: "id-r0", Username: "bbr-abc", Host: "127.77.1.10", HostPublicKey: hostKey},
					boshdir.Host{Job: "redis", IndexOrID: "id-r1", Username: "bbr-abc", Host: "127.77.1.11", HostPublicKey: hostKey},
				))
				Expect(res.GatewayHost).To(BeEmpty())
				Expect(agent.SetUps()).To(ConsistOf(
					agentCall{Deployment: "sample", Instance: "redis/id-r0", User: "bbr-abc", Key: userKey},
					agentCall{Deployment: "sample", Instance: "redis/id-r1", User: "bbr-abc", Key: userKey},
				))
			})

			It("cleans up an SSH user on one instance, with bosh-cli's regex", func() {
				dep, err := dir.FindDeployment("sample")
				Expect(err).NotTo(HaveOccurred())
				Expect(dep.CleanUpSSH(boshdir.NewAllOrInstanceGroupOrInstanceSlug("redis", "id-r1"), boshdir.SSHOpts{Username: "bbr-abc"})).To(Succeed())
				// bosh-cli does not wait for the cleanup task; the lab
				// answers once it is done, so the agent was called already.
				Expect(agent.CleanUps()).To(Equal([]agentCall{{Deployment: "sample", Instance: "redis/id-r1", Regex: "^bbr-abc"}}))
			})

			It("reports an unknown deployment", func() {
				dep, err := dir.FindDeployment("nope")
				Expect(err).NotTo(HaveOccurred())
				_, err = dep.Manifest()
				Expect(err).To(MatchError(ContainSubstring("Deployment 'nope' doesn't exist")))
				_, err = dep.VMInfos()
				Expect(err).To(MatchError(ContainSubstring("Deployment 'nope' doesn't exist")))
				_, err = dep.SetUpSSH(boshdir.NewAllOrInstanceGroupOrInstanceSlug("redis", ""), boshdir.SSHOpts{Username: "u", PublicKey: userKey})
				Expect(err).To(MatchError(ContainSubstring("Deployment 'nope' doesn't exist")))
			})
		})
	}

	Context("selecting SSH targets", func() {
		var dep boshdir.Deployment

		BeforeEach(func() {
			var err error
			dep, err = startDirector("basic", agent).boshClient(client, secret, nil).FindDeployment("sample")
			Expect(err).NotTo(HaveOccurred())
		})

		setUp := func(group, indexOrID string) ([]string, error) {
			res, err := dep.SetUpSSH(boshdir.NewAllOrInstanceGroupOrInstanceSlug(group, indexOrID), boshdir.SSHOpts{Username: "u", PublicKey: userKey})
			var ids []string
			for _, h := range res.Hosts {
				ids = append(ids, h.Job+"/"+h.IndexOrID)
			}
			return ids, err
		}

		It("takes an instance by index", func() {
			Expect(setUp("redis", "1")).To(Equal([]string{"redis/id-r1"}))
		})

		It("takes an instance by ID", func() {
			Expect(setUp("api", "id-a0")).To(Equal([]string{"api/id-a0"}))
		})

		It("takes every instance of every group without a group", func() {
			Expect(setUp("", "")).To(Equal([]string{"redis/id-r0", "redis/id-r1", "api/id-a0"}))
			Expect(agent.SetUps()).To(HaveLen(3))
		})

		It("fails for an unknown group, an errand without instances, or an unknown instance", func() {
			for _, slug := range [][2]string{{"nope", ""}, {"smoke-tests", ""}, {"redis", "7"}} {
				_, err := setUp(slug[0], slug[1])
				Expect(err).To(MatchError(ContainSubstring("state is 'error'")), slug[0])
			}
			Expect(agent.SetUps()).To(BeEmpty())
		})
	})

	Context("when agents fail", func() {
		var (
			reporter *recordingReporter
			dir      boshdir.Director
			dep      boshdir.Deployment
		)

		BeforeEach(func() {
			reporter = &recordingReporter{}
			dir = startDirector("basic", agent).boshClient(client, secret, reporter)
			var err error
			dep, err = dir.FindDeployment("sample")
			Expect(err).NotTo(HaveOccurred())
		})

		It("fails the setup task when every agent failed, and says why in the task's events", func() {
			agent.fail = map[string]error{"*": errors.New("useradd: exit status 9")}
			_, err := dep.SetUpSSH(boshdir.NewAllOrInstanceGroupOrInstanceSlug("redis", ""), boshdir.SSHOpts{Username: "u", PublicKey: userKey})
			Expect(err).To(MatchError(ContainSubstring("Expected task '1' to succeed but state is 'error'")))
			Expect(reporter.Output()).To(ContainSubstring(`"message":"ssh setup failed on every instance: redis/id-r0: useradd: exit status 9`))
			Expect(reporter.states).To(Equal([]string{"1:error"}))
		})

		It("fails the setup when one agent failed", func() {
			agent.fail = map[string]error{"id-r1": errors.New("no space left")}
			_, err := dep.SetUpSSH(boshdir.NewAllOrInstanceGroupOrInstanceSlug("redis", ""), boshdir.SSHOpts{Username: "u", PublicKey: userKey})
			Expect(err).To(MatchError(ContainSubstring("Failed to set up SSH session for one of the instances")))
			Expect(agent.SetUps()).To(HaveLen(2))
		})

		It("fails the cleanup task when every agent failed", func() {
			agent.fail = map[string]error{"*": errors.New("userdel: busy")}
			// bosh-cli does not look at the cleanup task's outcome (nor
			// with a real Director); the task records the failure.
			Expect(dep.CleanUpSSH(boshdir.NewAllOrInstanceGroupOrInstanceSlug("api", ""), boshdir.SSHOpts{Username: "u"})).To(Succeed())
			Expect(agent.CleanUps()).To(Equal([]agentCall{{Deployment: "sample", Instance: "api/id-a0", Regex: "^u"}}))
			tasks, err := dir.RecentTasks(1, boshdir.TasksFilter{})
			Expect(err).NotTo(HaveOccurred())
			Expect(tasks).To(HaveLen(1))
			Expect(tasks[0].State()).To(Equal("error"))
			Expect(tasks[0].Result()).To(ContainSubstring("api/id-a0: userdel: busy"))
		})
	})

	Context("with wrong credentials", func() {
		It("refuses basic auth with the Director's message", func() {
			lab := startDirector("basic", &fakeAgent{})
			_, err := lab.boshClient(client, "wrong", nil).Deployments()
			Expect(err).To(MatchError(And(ContainSubstring("'401'"), ContainSubstring("Not authorized: '/deployments'"))))
			info, err := lab.boshClient(client, "wrong", nil).Info()
			Expect(err).NotTo(HaveOccurred())
			Expect(info.User).To(BeEmpty())
		})

		It("refuses a token for a wrong client secret with UAA's message", func() {
			lab := startDirector("uaa", &fakeAgent{})
			_, err := lab.boshClient(client, "wrong", nil).Deployments()
			Expect(err).To(MatchError(And(ContainSubstring("'401'"), ContainSubstring("Bad credentials"))))
		})
	})

	It("issues UAA tokens bosh-cli can read: bosh.admin scope, not expired", func() {
		lab := startDirector("uaa", &fakeAgent{})
		token, err := lab.uaaClient(client, secret).ClientCredentialsGrant()
		Expect(err).NotTo(HaveOccurred())
		Expect(token.Type()).To(Equal("bearer"))
		info, err := boshuaa.NewTokenInfoFromValue(token.Value())
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Scopes).To(Equal([]string{"bosh.admin"}))
		Expect(time.Unix(int64(info.ExpiredAt), 0)).To(BeTemporally(">", time.Now().Add(30*time.Minute)))
	})

	It("lists its tasks for bosh tasks --recent", func() {
		lab := startDirector("basic", &fakeAgent{})
		dir := lab.boshClient(client, secret, nil)
		dep, err := dir.FindDeployment("sample")
		Expect(err).NotTo(HaveOccurred())
		_, err = dep.VMInfos()
		Expect(err).NotTo(HaveOccurred())
		_, err = dep.SetUpSSH(boshdir.NewAllOrInstanceGroupOrInstanceSlug("api", ""), boshdir.SSHOpts{Username: "u", PublicKey: userKey})
		Expect(err).NotTo(HaveOccurred())

		tasks, err := dir.RecentTasks(10, boshdir.TasksFilter{Deployment: "sample"})
		Expect(err).NotTo(HaveOccurred())
		Expect(tasks).To(HaveLen(2))
		Expect(tasks[0].ID()).To(Equal(2))
		Expect(tasks[0].Description()).To(Equal("ssh: setup:api"))
		Expect(tasks[0].Result()).To(Equal("ssh setup on 1 of 1 instances"))
		Expect(tasks[1].Description()).To(Equal("retrieve vm-stats"))
		for _, t := range tasks {
			Expect(t.State()).To(Equal("done"))
			Expect(t.User()).To(Equal(client))
			Expect(t.DeploymentName()).To(Equal("sample"))
			Expect(t.StartedAt()).To(BeTemporally("~", time.Now(), time.Minute))
		}
		current, err := dir.CurrentTasks(boshdir.TasksFilter{})
		Expect(err).NotTo(HaveOccurred())
		Expect(current).To(BeEmpty())
	})
})
