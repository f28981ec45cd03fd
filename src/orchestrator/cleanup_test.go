package orchestrator_test

import (
	"context"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

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
		o = &orchestrator.Orchestrator{Director: w, Dial: w.dial, Logger: boshlog.NewWriterLogger(boshlog.LevelDebug, GinkgoWriter),
			Parallelism: 4, Now: time.Now, CleanupTimeout: time.Minute}
	})

	It("backup-cleanup unlocks as after a failed backup and removes the staging directory", func() {
		Expect(o.BackupCleanup(context.Background(), "dep")).To(Succeed())
		Expect(w.ran()).To(Equal([]string{"api/0 api post-backup-unlock"}))
		Expect(w.eventsFor("post-backup-unlock")[0].Env).To(HaveKeyWithValue("BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL", "false"))
		Expect(w.instances[0].staging).To(BeFalse())
		Expect(w.cleanUps).To(HaveLen(2))
	})

	It("restore-cleanup runs post-restore-unlock and removes the staging directory", func() {
		Expect(o.RestoreCleanup(context.Background(), "dep")).To(Succeed())
		Expect(w.ran()).To(Equal([]string{"api/0 api post-restore-unlock"}))
		Expect(w.instances[0].staging).To(BeFalse())
	})
})
