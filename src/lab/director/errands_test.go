package director_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"

	boshdir "github.com/cloudfoundry/bosh-cli/v7/director"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/director"
	"github.com/bbr-release/bbr/src/lab/model"
)

// fakeErrands answers each run with its instance's ID as stdout, exit
// code codes[ID], and logs; with block, it runs until cancelled.
type fakeErrands struct {
	mu    sync.Mutex
	ran   []string
	codes map[string]int
	block bool
}

func (f *fakeErrands) RunErrand(ctx context.Context, inst model.Instance, job string) (director.ErrandResult, error) {
	f.mu.Lock()
	f.ran = append(f.ran, inst.ID+":"+job)
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return director.ErrandResult{ExitCode: 143, Stdout: "stopped, unlocked\n"}, nil
	}
	return director.ErrandResult{ExitCode: f.codes[inst.ID], Stdout: "ran on " + inst.ID + "\n", Stderr: "warning\n", Logs: []byte("logs of " + inst.ID)}, nil
}

func (f *fakeErrands) Ran() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ran...)
}

var _ = Describe("errands, seen by bosh-cli", func() {
	var (
		errands  *fakeErrands
		dep      boshdir.Deployment
		dir      boshdir.Director
		reporter *recordingReporter
	)

	BeforeEach(func() {
		errands = &fakeErrands{codes: map[string]int{}}
		lab := startDirector("basic", &fakeAgent{}, func(cfg *director.Config) {
			cfg.Errands = errands
			// smoke-tests is colocated on both redis instances, with the
			// bin/run its templates render; api's job has none.
			for i := range cfg.Lab.Deployments[0].Instances {
				inst := &cfg.Lab.Deployments[0].Instances[i]
				inst.Root = GinkgoT().TempDir()
				if inst.Group == "redis" {
					inst.Jobs = append(inst.Jobs, "smoke-tests")
					run := filepath.Join(inst.Root, "jobs", "smoke-tests", "bin", "run")
					Expect(os.MkdirAll(filepath.Dir(run), 0o755)).To(Succeed())
					Expect(os.WriteFile(run, []byte("#!/bin/sh\n"), 0o755)).To(Succeed())
				}
			}
		})
		reporter = &recordingReporter{}
		dir = lab.boshClient(client, secret, reporter)
		var err error
		dep, err = dir.FindDeployment("sample")
		Expect(err).NotTo(HaveOccurred())
	})

	It("lists a colocated errand once, and no job without bin/run", func() {
		list, err := dep.Errands()
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(Equal([]boshdir.Errand{{Name: "smoke-tests"}}))
	})

	It("runs it on every instance that has it, returning each one's exit code, output and logs", func() {
		errands.codes["id-r1"] = 3
		results, err := dep.RunErrand("smoke-tests", false, false, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(errands.Ran()).To(ConsistOf("id-r0:smoke-tests", "id-r1:smoke-tests"))
		Expect(results).To(HaveLen(2))
		Expect(results[0]).To(And(HaveField("InstanceGroup", "redis"), HaveField("InstanceID", "id-r0"), HaveField("ExitCode", 0),
			HaveField("Stdout", "ran on id-r0\n"), HaveField("Stderr", "warning\n")))
		Expect(results[1]).To(And(HaveField("InstanceID", "id-r1"), HaveField("ExitCode", 3)))
		var logs bytes.Buffer
		Expect(dir.DownloadResourceUnchecked(results[0].LogsBlobstoreID, &logs)).To(Succeed())
		Expect(logs.String()).To(Equal("logs of id-r0"))
		sum := sha1.Sum(logs.Bytes())
		Expect(results[0].LogsSHA1).To(Equal(hex.EncodeToString(sum[:])))
	})

	It("runs it only on the instances selected by group, index or ID", func() {
		byIndex, err := boshdir.NewInstanceGroupOrInstanceSlugFromString("redis/1")
		Expect(err).NotTo(HaveOccurred())
		results, err := dep.RunErrand("smoke-tests", false, false, []boshdir.InstanceGroupOrInstanceSlug{byIndex})
		Expect(err).NotTo(HaveOccurred())
		Expect(results).To(ConsistOf(HaveField("InstanceID", "id-r1")))

		api, err := boshdir.NewInstanceGroupOrInstanceSlugFromString("api")
		Expect(err).NotTo(HaveOccurred())
		// A failed task's error is an event, which the bosh CLI prints.
		_, err = dep.RunErrand("smoke-tests", false, false, []boshdir.InstanceGroupOrInstanceSlug{api})
		Expect(err).To(MatchError(ContainSubstring("state is 'error'")))
		Expect(reporter.Output()).To(ContainSubstring("No instances match selection 'api' with errand 'smoke-tests'"))
		_, err = dep.RunErrand("nope", false, false, nil)
		Expect(err).To(HaveOccurred())
		Expect(reporter.Output()).To(ContainSubstring("Errand 'nope' doesn't exist"))
		Expect(errands.Ran()).To(Equal([]string{"id-r1:smoke-tests"}))
	})

	It("holds the deployment's lock while an errand runs, as the Director does: another task on it fails", func() {
		errands.block = true
		done := make(chan error, 1)
		go func() {
			_, err := dep.RunErrand("smoke-tests", false, false, nil)
			done <- err
		}()
		Eventually(errands.Ran).Should(HaveLen(2))
		_, err := dep.RunErrand("smoke-tests", false, false, nil)
		Expect(err).To(MatchError(ContainSubstring("state is 'error'")))
		Expect(reporter.Output()).To(ContainSubstring("Failed to acquire lock for lock:deployment:sample"))
		Expect(errands.Ran()).To(HaveLen(2), "the second run started nothing")
		running, err := dir.CurrentTasks(boshdir.TasksFilter{})
		Expect(err).NotTo(HaveOccurred())
		Expect(running).To(HaveLen(1))
		Expect(running[0].Cancel()).To(Succeed())
		Eventually(done, "10s").Should(Receive(HaveOccurred()))
		errands.block = false
		_, err = dep.RunErrand("smoke-tests", false, false, nil)
		Expect(err).NotTo(HaveOccurred(), "the lock is released with the task")
	})

	It("cancels a running errand: its context ends, and the task is cancelled", func() {
		errands.block = true
		done := make(chan error, 1)
		go func() {
			_, err := dep.RunErrand("smoke-tests", false, false, nil)
			done <- err
		}()
		var running []boshdir.Task
		Eventually(func() []boshdir.Task {
			running, _ = dir.CurrentTasks(boshdir.TasksFilter{})
			return running
		}).Should(HaveLen(1))
		Eventually(errands.Ran).Should(HaveLen(2))
		Expect(running[0].Cancel()).To(Succeed())
		Eventually(done, "10s").Should(Receive(MatchError(ContainSubstring("state is 'cancelled'"))))
		task, err := dir.FindTask(running[0].ID())
		Expect(err).NotTo(HaveOccurred())
		Expect(task.State()).To(Equal("cancelled"))
		Expect(task.Cancel()).To(MatchError(ContainSubstring("invalid state (cancelled)")), "a finished task cannot be cancelled")
	})
})
