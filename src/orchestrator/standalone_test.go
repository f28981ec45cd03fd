package orchestrator_test

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/orchestrator"
)

// Director mode: the Standalone finder, one VM reached with the operator's
// own user; no Director is asked anything.
var _ = Describe("the Standalone finder (director mode)", func() {
	var (
		w       *world
		o       *orchestrator.Orchestrator
		log     *gbytes.Buffer
		dialErr error
		dir     string
	)

	BeforeEach(func() {
		w = newWorld("unused")
		w.add("bosh", 0, map[string]*fakeJob{
			"director": job("backup", "pre-backup-lock", "post-backup-unlock").withData(map[string]string{"db": "x"}).
				withMetadata("backup_should_be_locked_before:\n- job_name: uaa\n  release: uaa-release\n"),
			"uaa": job("pre-backup-lock", "post-backup-unlock"),
		})
		dialErr = nil
		dir = GinkgoT().TempDir()
		log = gbytes.NewBuffer()
		o = &orchestrator.Orchestrator{
			Finder: &orchestrator.Standalone{Name: "10.0.0.6", Dial: func(context.Context) (orchestrator.InstanceConn, error) {
				return w.instances[0], dialErr
			}},
			Logger: boshlog.NewWriterLogger(boshlog.LevelDebug, log), Parallelism: 4, Now: time.Now,
			CleanupTimeout: time.Minute, Leftovers: &orchestrator.Leftovers{},
		}
	})

	It("backs up the VM as bosh/0, matching the lock order by job name alone", func() {
		var midRun string
		w.instances[0].jobs["uaa"].onLock = func() { midRun = o.Leftovers.Report() }
		path, err := o.Backup(context.Background(), orchestrator.BackupOptions{Deployment: "10.0.0.6", Destination: artifact.Local{Dir: dir}})
		Expect(err).NotTo(HaveOccurred())
		Expect(filepath.Base(path)).To(HavePrefix("10.0.0.6_"))
		Expect(filepath.Join(path, "bosh-0-director.tar")).To(BeARegularFile())
		Expect(log).To(gbytes.Say(`Detected order: director should be locked before /uaa during backup`))
		Expect(w.ran()).To(HaveExactElements(
			"bosh/0 director pre-backup-lock", "bosh/0 uaa pre-backup-lock",
			"bosh/0 director backup", "bosh/0 uaa post-backup-unlock", "bosh/0 director post-backup-unlock"))
		Expect(w.setUps).To(BeEmpty())
		Expect(w.cleanUps).To(BeEmpty(), "the operator's own user stays")
		Expect(w.instances[0].closed).To(BeTrue())
		Expect(midRun).To(Equal("Deployment 10.0.0.6:\n  may still be locked: director on bosh/0, uaa on bosh/0\n  /var/vcap/store/bbr-backup left on: bosh/0\n"))
		Expect(o.Leftovers.Report()).To(BeEmpty())
	})

	It("names the VM when it cannot connect", func() {
		dialErr = errors.New("connection refused")
		err := o.PreBackupCheck(context.Background(), "10.0.0.6")
		Expect(err).To(MatchError("connecting to 10.0.0.6: connection refused"))
		Expect(o.Leftovers.Report()).To(BeEmpty())
	})

	It("reports nothing left while finding the jobs, and closes the connection when that fails", func() {
		var midFind string
		w.instances[0].jobs["director"].metadata = "not: [yaml"
		o.Finder = &orchestrator.Standalone{Name: "10.0.0.6", Dial: func(context.Context) (orchestrator.InstanceConn, error) {
			midFind = o.Leftovers.Report()
			return w.instances[0], nil
		}}
		err := o.PreBackupCheck(context.Background(), "10.0.0.6")
		Expect(err).To(MatchError(ContainSubstring("job director on bosh/0")))
		Expect(midFind).To(BeEmpty())
		Expect(w.instances[0].closed).To(BeTrue())
		Expect(o.Leftovers.Report()).To(BeEmpty())
	})
})
