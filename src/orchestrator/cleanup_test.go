package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/bbr-release/bbr/src/orchestrator"
)

var _ = Describe("the cleanup commands", func() {
	var (
		w *world
		o *orchestrator.Orchestrator
	)

	BeforeEach(func() {
		w = newWorld("dep")
		w.add("redis", 0, map[string]*fakeJob{"redis": job("backup", "restore")})
		w.add("api", 0, map[string]*fakeJob{"api": job("pre-backup-lock", "post-backup-unlock", "pre-restore-lock", "post-restore-unlock")})
		w.instances[0].staging = true // left by an interrupted run
		o = &orchestrator.Orchestrator{Finder: w.finder(), Logger: boshlog.NewWriterLogger(boshlog.LevelDebug, GinkgoWriter),
			Parallelism: 4, Now: time.Now, CleanupTimeout: time.Minute}
	})

	It("backup-cleanup unlocks as after a failed backup and removes the staging directory", func() {
		Expect(o.BackupCleanup(context.Background(), "dep", false)).To(Succeed())
		Expect(w.ran()).To(Equal([]string{"api/0 api post-backup-unlock"}))
		Expect(w.eventsFor("post-backup-unlock")[0].Env).To(HaveKeyWithValue("BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL", "false"))
		Expect(w.instances[0].staging).To(BeFalse())
		Expect(w.cleanUps).To(HaveLen(2))
	})

	It("warns, and does not fail, when the Director has not confirmed an SSH user's removal in time", func() {
		log := gbytes.NewBuffer()
		o.Logger = boshlog.NewWriterLogger(boshlog.LevelDebug, log)
		w.cleanUpErr = fmt.Errorf("cleaning up ssh user on redis/0: %w: task 7 still running", orchestrator.ErrCleanupUnconfirmed)
		Expect(o.BackupCleanup(context.Background(), "dep", false)).To(Succeed())
		Expect(log).To(gbytes.Say(`WARN - cleaning up ssh user on redis/0: the Director has not finished removing the SSH user yet: task 7 still running`))
	})

	It("fails with the user's name when the Director says the removal failed", func() {
		w.cleanUpErr = errors.New("cleaning up ssh user on redis/0: task 7 ended in state error: userdel failed")
		err := o.BackupCleanup(context.Background(), "dep", false)
		Expect(err).To(MatchError(MatchRegexp(`SSH user bosh_\w+ may be left on redis/redis-id-0 .*task 7 ended in state error: userdel failed`)))
	})

	It("restore-cleanup runs post-restore-unlock and removes the staging directory", func() {
		Expect(o.RestoreCleanup(context.Background(), "dep", false)).To(Succeed())
		Expect(w.ran()).To(Equal([]string{"api/0 api post-restore-unlock"}))
		Expect(w.instances[0].staging).To(BeFalse())
	})

	Describe("while the run that staged the backup is still going", func() {
		BeforeEach(func() {
			w.instances[0].stagingOwner = "bbr run of SSH user bosh_0123456789abcde, started 2026-12-01T20:00:00Z"
			w.users["bosh_0123456789abcde"] = true // that run's user: it is alive
		})

		It("refuses, naming the run and since when, and unlocks and removes nothing", func() {
			for _, cleanup := range []func(context.Context, string, bool) error{o.BackupCleanup, o.RestoreCleanup} {
				err := cleanup(context.Background(), "dep", false)
				Expect(err).To(MatchError(ContainSubstring("belongs to a bbr run of SSH user bosh_0123456789abcde, started 2026-12-01T20:00:00Z, which is still running")))
				Expect(err).To(MatchError(ContainSubstring("--force")))
			}
			Expect(w.ran()).To(BeEmpty())
			Expect(w.instances[0].staging).To(BeTrue())
		})

		It("refuses when it cannot tell whether that run is alive", func() {
			w.instances[0].userCheckErr = errors.New("session refused")
			err := o.BackupCleanup(context.Background(), "dep", false)
			Expect(err).To(MatchError(ContainSubstring("session refused (pass --force to clean up anyway)")))
			Expect(w.ran()).To(BeEmpty())
			Expect(w.instances[0].staging).To(BeTrue())
		})

		It("cleans up with force", func() {
			Expect(o.BackupCleanup(context.Background(), "dep", true)).To(Succeed())
			Expect(w.ran()).To(Equal([]string{"api/0 api post-backup-unlock"}))
			Expect(w.instances[0].staging).To(BeFalse())
		})

		It("cleans up a dead run's leftovers as before", func() {
			delete(w.users, "bosh_0123456789abcde")
			Expect(o.BackupCleanup(context.Background(), "dep", false)).To(Succeed())
			Expect(w.instances[0].staging).To(BeFalse())
		})
	})
})
