package orchestrator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	boshlog "github.com/cloudfoundry/bosh-utils/logger"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/orchestrator"
	"github.com/bbr-release/bbr/src/remote"
)

var _ = Describe("Workflows", func() {
	var (
		w     *world
		o     *orchestrator.Orchestrator
		dir   string
		ctx   context.Context
		clock time.Time
	)

	BeforeEach(func() {
		w = newWorld("dep")
		dir = GinkgoT().TempDir()
		ctx = context.Background()
		clock = time.Date(2026, 11, 25, 3, 23, 27, 0, time.UTC)
		o = &orchestrator.Orchestrator{
			Finder:         w.finder(),
			Logger:         boshlog.NewWriterLogger(boshlog.LevelDebug, GinkgoWriter),
			Version:        "1.2.3",
			Parallelism:    4,
			Now:            func() time.Time { return clock },
			CleanupTimeout: time.Minute,
		}
	})

	backup := func() (string, error) {
		return o.Backup(ctx, orchestrator.BackupOptions{Deployment: "dep", Destination: artifact.Local{Dir: dir}})
	}

	Describe("progress of a long copy", func() {
		var (
			log     *gbytes.Buffer
			release chan struct{}
		)

		BeforeEach(func() {
			log = gbytes.NewBuffer()
			o.Logger = boshlog.NewWriterLogger(boshlog.LevelDebug, io.MultiWriter(log, GinkgoWriter))
			o.ProgressInterval = 5 * time.Millisecond
			release = make(chan struct{})
			w.add("redis", 0, map[string]*fakeJob{"redis": job("backup", "restore").withData(map[string]string{"dump.rdb": strings.Repeat("x", 3000)})})
		})

		It("says how much the drain copied, at what rate, and how many jobs are done", func() {
			w.instances[0].jobs["redis"].onCopy = func() { <-release }
			errc := make(chan error, 1)
			go func() { _, err := backup(); errc <- err }()
			Eventually(log).Should(gbytes.Say(`INFO - Copying: \d+(\.\d)?[BKM] so far at \S+/s, 0 of 1 jobs done`))
			close(release)
			Expect(<-errc).To(Succeed())
		})

		It("says how far the restore's upload is, out of what the artifact holds", func() {
			path, err := backup()
			Expect(err).NotTo(HaveOccurred())
			size := fileSize(filepath.Join(path, "redis-0-redis.tar"))
			w.instances[0].jobs["redis"].onCopy = func() { <-release }
			errc := make(chan error, 1)
			go func() { errc <- o.Restore(ctx, orchestrator.RestoreOptions{Deployment: "dep", Source: mustOpen(path)}) }()
			Eventually(log).Should(gbytes.Say(`INFO - Copying: \S+ of ` + regexp.QuoteMeta(artifact.HumanSize(size)) + ` \(\d+%\) at \S+/s, 0 of 1 jobs done`))
			close(release)
			Expect(<-errc).To(Succeed())
		})

		It("says nothing more than upstream when the interval is zero", func() {
			o.ProgressInterval = 0
			_, err := backup()
			Expect(err).NotTo(HaveOccurred())
			Expect(string(log.Contents())).NotTo(ContainSubstring("Copying:"))
		})
	})

	Describe("Backup", func() {
		BeforeEach(func() {
			w.add("redis", 0, map[string]*fakeJob{"redis": job("backup", "restore").withData(map[string]string{"dump.rdb": "zero"})})
			w.add("redis", 1, map[string]*fakeJob{"redis": job("backup", "restore").withData(map[string]string{"dump.rdb": "one", "sub dir/with space": "x"})})
			w.add("api", 0, map[string]*fakeJob{"api": job("pre-backup-lock", "post-backup-unlock")})
		})

		It("writes upstream's artifact layout with verified checksums", func() {
			path, err := backup()
			Expect(err).NotTo(HaveOccurred())
			Expect(filepath.Base(path)).To(Equal("dep_20261125T032327Z"))
			info, err := os.Stat(path)
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o700)))

			art, err := artifact.Open(path)
			Expect(err).NotTo(HaveOccurred())
			Expect(artifact.Verify(context.Background(), art)).To(Succeed())
			files := art.Metadata().Files()
			Expect(files).To(HaveKey("redis-0-redis.tar"))
			Expect(files["redis-1-redis.tar"]).To(HaveKey("./sub dir/with space"))
			Expect(art.Metadata().BackupActivity.FinishTime).To(Equal("2026/11/25 03:23:27 UTC"))
			Expect(art.Metadata().BackupActivity.LockStartTime).To(Equal("2026-11-25T03:23:27.000Z"))
			Expect(art.Metadata().BackupActivity.UnlockFinishTime).To(Equal("2026-11-25T03:23:27.000Z"))
		})

		It("locks, backs up, unlocks in that order, then cleans up every instance", func() {
			_, err := backup()
			Expect(err).NotTo(HaveOccurred())
			ran := w.ran()
			Expect(ran[0]).To(Equal("api/0 api pre-backup-lock"))
			Expect(ran[1:3]).To(ConsistOf("redis/0 redis backup", "redis/1 redis backup"))
			Expect(ran[3]).To(Equal("api/0 api post-backup-unlock"))
			Expect(w.eventsFor("post-backup-unlock")[0].Env).To(HaveKeyWithValue("BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL", "true"))
			Expect(w.eventsFor("backup")[0].Env).To(HaveKeyWithValue("BBR_ARTIFACT_DIRECTORY", "/var/vcap/store/bbr-backup/redis/"))
			Expect(w.eventsFor("backup")[0].Env).To(HaveKeyWithValue("ARTIFACT_DIRECTORY", "/var/vcap/store/bbr-backup/redis/"))
			Expect(w.cleanUps).To(ConsistOf("redis/redis-id-0", "redis/redis-id-1", "api/api-id-0"))
			for _, i := range w.instances {
				Expect(i.staging).To(BeFalse(), i.name())
				Expect(i.closed).To(BeTrue(), i.name())
			}
		})

		It("unlocks with BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL=false and exits 1 when a backup script fails", func() {
			w.instances[1].jobs["redis"].failing("backup", errors.New("disk on fire"))
			path, err := backup()
			Expect(err).To(MatchError(ContainSubstring("disk on fire")))
			Expect(filepath.Base(path)).To(Equal("dep_20261125T032327Z.failed"), "a failed backup never gets the final name")
			Expect(os.ReadFile(filepath.Join(path, "FAILED"))).To(ContainSubstring("disk on fire"))
			Expect(orchestrator.ExitCode(err)).To(Equal(1))
			unlocks := w.eventsFor("post-backup-unlock")
			Expect(unlocks).To(HaveLen(1))
			Expect(unlocks[0].Env).To(HaveKeyWithValue("BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL", "false"))
			Expect(w.instances[1].staging).To(BeFalse())
		})

		It("exits with the lock bit and still unlocks when a lock fails", func() {
			w.instances[2].jobs["api"].failing("pre-backup-lock", errors.New("cannot lock"))
			_, err := backup()
			Expect(orchestrator.ExitCode(err)).To(Equal(4))
			Expect(w.eventsFor("backup")).To(BeEmpty())
			Expect(w.eventsFor("post-backup-unlock")).To(HaveLen(1))
		})

		It("ORs the unlock bit and still drains when an unlock fails", func() {
			w.instances[2].jobs["api"].failing("post-backup-unlock", errors.New("cannot unlock"))
			path, err := backup()
			Expect(orchestrator.ExitCode(err)).To(Equal(8))
			Expect(orchestrator.CleanupAdvised(err)).To(BeTrue())
			Expect(filepath.Base(path)).To(Equal("dep_20261125T032327Z"), "the drained backup is good")
			Expect(filepath.Join(path, "redis-1-redis.tar")).To(BeAnExistingFile())
		})

		It("with UnsafeLockFree runs only the backup scripts and records no lock window", func() {
			path, err := o.Backup(ctx, orchestrator.BackupOptions{Deployment: "dep", Destination: artifact.Local{Dir: dir}, UnsafeLockFree: true})
			Expect(err).NotTo(HaveOccurred())
			Expect(w.ran()).To(ConsistOf("redis/0 redis backup", "redis/1 redis backup"))
			art, err := artifact.Open(path)
			Expect(err).NotTo(HaveOccurred())
			Expect(artifact.Verify(context.Background(), art)).To(Succeed())
			Expect(art.Metadata().BackupActivity.LockStartTime).To(BeEmpty())
		})

		It("skips Windows instances with a warning and still removes their SSH user", func() {
			win := w.add("windows-worker", 0, map[string]*fakeJob{"worker": job("backup")})
			win.windows = true
			path, err := backup()
			Expect(err).NotTo(HaveOccurred())
			Expect(w.ran()).NotTo(ContainElement(ContainSubstring("windows-worker")))
			Expect(filepath.Join(path, "windows-worker-0-worker.tar")).NotTo(BeAnExistingFile())
			Expect(w.cleanUps).To(ContainElement("windows-worker/windows-worker-id-0"))
			Expect(win.closed).To(BeTrue())
		})

		It("refuses a leftover staging directory before locking anything", func() {
			w.instances[0].staging = true
			_, err := backup()
			Expect(err).To(MatchError(ContainSubstring("/var/vcap/store/bbr-backup already exists on instance redis/redis-id-0")))
			Expect(orchestrator.CleanupAdvised(err)).To(BeTrue())
			Expect(w.ran()).To(BeEmpty())
			Expect(w.instances[0].staging).To(BeTrue(), "someone else's staging dir must be left alone")
		})

		It("refuses while another run holds the staging directory, and leaves that run alone", func() {
			w.instances[0].staging = true
			w.instances[0].stagingOwner = "bbr run of SSH user bosh_0123456789abcde, started 2026-11-25T03:20:00Z"
			w.users["bosh_0123456789abcde"] = true
			_, err := backup()
			Expect(err).To(MatchError(ContainSubstring("it belongs to another bbr run of SSH user bosh_0123456789abcde, started 2026-11-25T03:20:00Z, which is still running")))
			Expect(orchestrator.CleanupAdvised(err)).To(BeFalse(), "backup-cleanup would break the running backup")
			Expect(w.ran()).To(BeEmpty())
			Expect(w.instances[0].staging).To(BeTrue())

			delete(w.users, "bosh_0123456789abcde") // that run is gone
			_, err = backup()
			Expect(orchestrator.CleanupAdvised(err)).To(BeTrue())
		})

		It("claims the staging directory before locking, so a second run cannot pass the check", func() {
			w.instances[2].jobs["api"].onLock = func() {
				defer GinkgoRecover() // it runs in one of bbr's goroutines
				// Mid-run, another bbr looks: every instance is already claimed.
				second := *o
				_, err := second.Backup(ctx, orchestrator.BackupOptions{Deployment: "dep", Destination: artifact.Local{Dir: GinkgoT().TempDir()}})
				Expect(err).To(MatchError(ContainSubstring("which is still running")))
			}
			_, err := backup()
			Expect(err).NotTo(HaveOccurred())
		})

		It("follows what is left to undo, for a report on an immediate abort", func() {
			o.Leftovers = &orchestrator.Leftovers{}
			var midRun string
			w.instances[2].jobs["api"].onLock = func() { midRun = o.Leftovers.Report() }
			_, err := backup()
			Expect(err).NotTo(HaveOccurred())
			Expect(midRun).To(ContainSubstring("Deployment dep:\n  may still be locked: api on api/api-id-0\n"))
			Expect(midRun).To(ContainSubstring("/var/vcap/store/bbr-backup left on: api/api-id-0, redis/redis-id-0, redis/redis-id-1"))
			Expect(midRun).To(MatchRegexp(`SSH user bosh_[0-9a-f]{15} left on: api/api-id-0, redis/redis-id-0, redis/redis-id-1`))
			Expect(o.Leftovers.Report()).To(BeEmpty(), "everything was undone")
		})

		It("while setting up SSH, reports the user it may leave; after a failed set-up, nothing", func() {
			o.Leftovers = &orchestrator.Leftovers{}
			var midSetUp string
			var once sync.Once // groups are set up in parallel
			w.onSetUp = func() { once.Do(func() { midSetUp = o.Leftovers.Report() }) }
			w.dialErr["redis-id-1"] = errors.New("connection refused")
			_, err := backup()
			Expect(err).To(MatchError(ContainSubstring("connection refused")))
			Expect(midSetUp).To(MatchRegexp(`^Deployment dep:\n  SSH user bosh_[0-9a-f]{15} may be left on its instances \(stopped while connecting\)\n$`))
			Expect(o.Leftovers.Report()).To(BeEmpty(), "the failed set-up cleaned up after itself")
		})

		It("stops the instance's checksum when the stream fails, instead of waiting for it", func(sctx SpecContext) {
			job := w.instances[0].jobs["redis"]
			job.streamErr = errors.New("connection lost")
			checksumStopped := make(chan bool, 1)
			job.onChecksum = func(cctx context.Context) {
				select {
				case <-cctx.Done():
					checksumStopped <- true
				case <-sctx.Done(): // the spec timed out: bbr waited for it
					checksumStopped <- false
				}
			}
			_, err := backup()
			Expect(err).To(MatchError(ContainSubstring("connection lost")))
			Expect(checksumStopped).To(Receive(BeTrue()))
			Expect(orchestrator.CleanupAdvised(err)).To(BeFalse(), "the run's own cleanup removed what the drain left")
		}, NodeTimeout(10*time.Second))

		It("names a backup failed when a panic unwinds through it before the drain ends", func() {
			o.Logger = panickingLogger{Logger: o.Logger, on: "Lock window"}
			Expect(func() { _, _ = backup() }).To(PanicWith("Lock window"))
			entries, err := os.ReadDir(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(entries).To(HaveLen(1))
			Expect(entries[0].Name()).To(HaveSuffix(artifact.FailedSuffix))
			Expect(w.users).To(BeEmpty(), "the deferred cleanup still ran")
		})

		It("unlocks every job it locked when the run is cancelled while locking", func() {
			cctx, cancel := context.WithCancel(ctx)
			ctx = cctx
			w.instances[2].jobs["api"].onLock = cancel
			_, err := backup()
			Expect(err).To(MatchError(context.Canceled))
			locked, unlocked := 0, 0
			for _, e := range w.ran() {
				switch {
				case strings.HasSuffix(e, " pre-backup-lock"):
					locked++
					Expect(w.ran()).To(ContainElement(strings.TrimSuffix(e, "pre-backup-lock") + "post-backup-unlock"))
				case strings.HasSuffix(e, " post-backup-unlock"):
					unlocked++
				}
			}
			Expect(locked).To(BeNumerically(">", 0))
			Expect(unlocked).To(Equal(locked))
			Expect(w.cleanUps).To(HaveLen(3))
			Expect(w.users).To(BeEmpty())
		})

		It("names the bootstrap instance's backup-one-restore-all artifact after job and release", func() {
			w.manifest = `
instance_groups:
- name: redis
  jobs:
  - name: redis
    release: redis-release
    properties: {bbr: {backup_one_restore_all: true}}
`
			path, err := backup()
			Expect(err).NotTo(HaveOccurred())
			Expect(filepath.Join(path, "redis-redis-release-backup-one-restore-all.tar")).To(BeAnExistingFile())
			Expect(filepath.Join(path, "redis-1-redis.tar")).To(BeAnExistingFile())
			Expect(filepath.Join(path, "redis-0-redis.tar")).NotTo(BeAnExistingFile())
			Expect(w.eventsFor("backup")).To(ContainElement(HaveField("Env", HaveKeyWithValue("BBR_ARTIFACT_DIRECTORY", "/var/vcap/store/bbr-backup/redis-redis-release-backup-one-restore-all/"))))
		})
	})

	Describe("lock ordering", func() {
		BeforeEach(func() {
			w.manifest = `
instance_groups:
- name: db
  jobs: [{name: db, release: rel}]
- name: api
  jobs: [{name: api, release: rel}]
`
			w.add("db", 0, map[string]*fakeJob{"db": job("pre-backup-lock", "backup", "post-backup-unlock").withData(map[string]string{"d": "1"})})
			w.add("api", 0, map[string]*fakeJob{"api": job("pre-backup-lock", "post-backup-unlock").withMetadata("backup_should_be_locked_before:\n- job_name: db\n  release: rel\n")})
		})

		It("locks in dependency order and unlocks in reverse, passing BBR_VERSION to metadata", func() {
			_, err := backup()
			Expect(err).NotTo(HaveOccurred())
			Expect(w.ran()).To(Equal([]string{
				"api/0 api pre-backup-lock", "db/0 db pre-backup-lock",
				"db/0 db backup",
				"db/0 db post-backup-unlock", "api/0 api post-backup-unlock",
			}))
			Expect(w.eventsFor("metadata")[0].Env).To(HaveKeyWithValue("BBR_VERSION", "1.2.3"))
		})

		It("gives each unlock script its own time: one that uses all of it costs the next nothing", func() {
			// The next unlock must start within this of its own start:
			// room for a busy machine, and still all the time db uses.
			o.CleanupTimeout = time.Second
			w.instances[0].jobs["db"].onUnlock = func(ctx context.Context) { <-ctx.Done() }
			_, err := backup()
			Expect(err).To(MatchError(ContainSubstring("post-backup-unlock for job db")))
			Expect(w.ran()).To(ContainElement("api/0 api post-backup-unlock"))
		})

		It("reads job releases from a v1 manifest (jobs with templates) too", func() {
			w.manifest = `
jobs:
- name: db
  templates: [{name: db, release: rel}]
- name: api
  templates: [{name: api, release: rel}]
`
			_, err := backup()
			Expect(err).NotTo(HaveOccurred())
			Expect(w.ran()[:2]).To(Equal([]string{"api/0 api pre-backup-lock", "db/0 db pre-backup-lock"}))
		})

		It("refuses a cycle before anything is locked", func() {
			w.instances[0].jobs["db"].withMetadata("backup_should_be_locked_before:\n- job_name: api\n  release: rel\n")
			_, err := backup()
			Expect(err).To(MatchError(ContainSubstring("cyclic")))
			Expect(w.ran()).To(BeEmpty())
			Expect(w.cleanUps).To(HaveLen(2))
		})

		It("rejects metadata that names a job without its release", func() {
			w.instances[1].jobs["api"].withMetadata("backup_should_be_locked_before:\n- job_name: db\n")
			_, err := backup()
			Expect(err).To(MatchError(ContainSubstring("both job name and release should be specified")))
			Expect(w.cleanUps).To(HaveLen(2))
		})
	})

	Describe("discovery failures", func() {
		It("cleans up the users it set up when an instance cannot be reached", func() {
			w.add("redis", 0, map[string]*fakeJob{"redis": job("backup")})
			w.add("redis", 1, map[string]*fakeJob{"redis": job("backup")})
			w.dialErr["redis-id-1"] = errors.New("connection refused")
			_, err := backup()
			Expect(err).To(MatchError(ContainSubstring("connection refused")))
			Expect(w.cleanUps).To(ConsistOf("redis/redis-id-0", "redis/redis-id-1"))
		})

		DescribeTable("refuses a job name from the instance that BOSH would not make, before anything runs",
			func(name string) {
				w.add("redis", 0, map[string]*fakeJob{"redis": job("pre-backup-lock", "backup"), name: job("backup")})
				_, err := backup()
				Expect(err).To(MatchError(ContainSubstring("refusing job name %q", name)))
				Expect(w.ran()).To(BeEmpty())
				Expect(w.users).To(BeEmpty(), "the SSH user is removed")
			},
			Entry("the parent directory (rm -rf of its staging dir would be /var/vcap/store)", ".."),
			Entry("a shell command", "evil;$(id)"),
			Entry("a space", "two words"),
			Entry("a control character", "tab\there"),
		)

		It("refuses an instance group or a release BOSH would not make", func() {
			w.add("red is", 0, map[string]*fakeJob{"redis": job("backup")})
			_, err := backup()
			Expect(err).To(MatchError(ContainSubstring(`refusing instance group name "red is"`)))

			w = newWorld("dep")
			o.Finder = w.finder()
			w.manifest = "instance_groups: [{name: redis, jobs: [{name: redis, release: ../r}]}]"
			w.add("redis", 0, map[string]*fakeJob{"redis": job("backup")})
			_, err = backup()
			Expect(err).To(MatchError(ContainSubstring(`refusing release name "../r"`)))
			Expect(w.ran()).To(BeEmpty())
		})

		It("refuses a deployment name that is not BOSH's before asking the Director", func() {
			_, err := o.Backup(ctx, orchestrator.BackupOptions{Deployment: "../etc", Destination: artifact.Local{Dir: dir}})
			Expect(err).To(MatchError(ContainSubstring(`refusing deployment name "../etc"`)))
		})

		Describe("a set-up that fails or is abandoned", func() {
			BeforeEach(func() {
				w.add("redis", 0, map[string]*fakeJob{"redis": job("backup")})
				w.add("redis", 1, map[string]*fakeJob{"redis": job("backup")})
				w.add("api", 0, map[string]*fakeJob{"api": job("pre-backup-lock")})
			})

			It("removes the user from every group when one group's task fails", func() {
				w.setUpErr["api"] = errors.New("task 7 failed")
				_, err := backup()
				Expect(err).To(MatchError(ContainSubstring("task 7 failed")))
				Expect(w.cleanUps).To(ConsistOf("redis/", "api/"))
				Expect(w.users).To(BeEmpty())
				Expect(orchestrator.ExitCode(err)).To(Equal(1), "the cleanup was confirmed: nothing is left")
			})

			It("refuses a set-up that covers fewer instances than the group has, and removes the user", func() {
				w.setUpHosts["redis"] = 1
				_, err := backup()
				Expect(err).To(MatchError(ContainSubstring("the Director set up ssh on 1 of the 2 instances of redis")))
				Expect(w.cleanUps).To(ConsistOf("redis/", "api/"))
				Expect(w.ran()).To(BeEmpty())
			})

			It("says the user may be made after the cleanup when the set-up task outlived the wait for it", func() {
				w.setUpErr["api"] = fmt.Errorf("%w after 30s: %w", orchestrator.ErrSetUpUnfinished, context.Canceled)
				_, err := backup()
				Expect(w.cleanUps).To(ConsistOf("redis/", "api/"), "the cleanup is still sent")
				Expect(err).To(MatchError(MatchRegexp(`SSH user bosh_\w+ may be left on api .*set-up task had not finished`)))
				Expect(orchestrator.ExitCode(err) & 16).To(Equal(16))
			})

			It("removes the user when a signal abandons the set-up, and says so only if that cleanup fails", func() {
				cctx, cancel := context.WithCancel(ctx)
				ctx = cctx
				w.onSetUp = cancel
				w.cleanUpErr = errors.New("director down")
				_, err := backup()
				Expect(err).To(MatchError(ContainSubstring("context canceled")))
				Expect(w.cleanUps).To(ConsistOf("redis/", "api/"))
				Expect(err).To(MatchError(ContainSubstring("SSH user bosh_")))
				Expect(err).To(MatchError(ContainSubstring("may be left on redis")))
			})
		})

		It("fails clearly on a deployment without backup scripts", func() {
			w.add("web", 0, map[string]*fakeJob{"web": job("restore")})
			_, err := backup()
			Expect(err).To(MatchError("Deployment 'dep' has no backup scripts"))
		})
	})

	Describe("Restore", func() {
		var path string

		BeforeEach(func() {
			w.add("redis", 0, map[string]*fakeJob{"redis": job("backup", "restore").withData(map[string]string{"dump.rdb": "zero"})})
			w.add("redis", 1, map[string]*fakeJob{"redis": job("backup", "restore").withData(map[string]string{"dump.rdb": "one"})})
			w.add("api", 0, map[string]*fakeJob{"api": job("pre-restore-lock", "post-restore-unlock")})
			var err error
			path, err = backup()
			Expect(err).NotTo(HaveOccurred())
			w.events = nil
		})

		restore := func() error {
			return o.Restore(ctx, orchestrator.RestoreOptions{Deployment: "dep", Source: mustOpen(path)})
		}

		It("puts each instance's data back, locked around the restore scripts", func() {
			Expect(restore()).To(Succeed())
			Expect(w.instances[0].jobs["redis"].restored).To(Equal(map[string]string{"dump.rdb": "zero"}))
			Expect(w.instances[1].jobs["redis"].restored).To(Equal(map[string]string{"dump.rdb": "one"}))
			ran := w.ran()
			Expect(ran).To(HaveLen(4))
			Expect(ran[0]).To(Equal("api/0 api pre-restore-lock"))
			Expect(ran[1:3]).To(ConsistOf("redis/0 redis restore", "redis/1 redis restore"))
			Expect(ran[3]).To(Equal("api/0 api post-restore-unlock"))
			for _, i := range w.instances {
				Expect(i.staging).To(BeFalse())
			}
		})

		It("restores instances in parallel by default, one at a time with Serial", func() {
			// Both restore scripts block until both have started: only a
			// parallel restore gets past them.
			both := make(chan struct{}, 2)
			gate := func() { both <- struct{}{}; Eventually(func() int { return len(both) }).Should(Equal(2)) }
			w.instances[0].jobs["redis"].onRestore = gate
			w.instances[1].jobs["redis"].onRestore = gate
			Expect(restore()).To(Succeed())

			w.instances[0].jobs["redis"].onRestore = nil
			w.instances[1].jobs["redis"].onRestore = nil
			w.instances[0].jobs["redis"].failing("restore", errors.New("bad dump"))
			w.events = nil
			err := o.Restore(ctx, orchestrator.RestoreOptions{Deployment: "dep", Source: mustOpen(path), Serial: true})
			Expect(err).To(MatchError(ContainSubstring("bad dump")))
			Expect(w.ran()).NotTo(ContainElement("redis/1 redis restore"), "serial restore stops at the first failing instance")
		})

		It("reads each stored file once", func() {
			src := &countingSource{Source: mustOpen(path), opened: map[string]int{}}
			Expect(o.Restore(ctx, orchestrator.RestoreOptions{Deployment: "dep", Source: src})).To(Succeed())
			Expect(src.opened).To(Equal(map[string]int{"redis-0-redis.tar": 1, "redis-1-redis.tar": 1}))
		})

		It("refuses a backup that lacks a file before connecting to anything", func() {
			Expect(os.Remove(filepath.Join(path, "redis-1-redis.tar"))).To(Succeed())
			setUpsBefore := len(w.setUps)
			err := restore()
			Expect(err).To(MatchError(ContainSubstring("backup is corrupted: redis-1-redis.tar is missing")))
			Expect(w.setUps).To(HaveLen(setUpsBefore))
			Expect(w.ran()).To(BeEmpty())
		})

		It("reads each file once and stops at a corrupt one, before any lock or restore script, removing what it staged", func() {
			tarPath := filepath.Join(path, "redis-1-redis.tar")
			raw, err := os.ReadFile(tarPath)
			Expect(err).NotTo(HaveOccurred())
			raw[bytes.Index(raw, []byte("one"))] = 'X'
			Expect(os.WriteFile(tarPath, raw, 0o600)).To(Succeed())
			err = restore()
			Expect(err).To(MatchError(ContainSubstring("backup is corrupted: checksums don't match for redis-1-redis.tar: ./dump.rdb differs from the backup's metadata")))
			Expect(w.ran()).To(BeEmpty())
			Expect(w.instances[1].staging).To(BeFalse(), "what was uploaded is removed")
		})

		It("reports the instance's failure, not a changed file, when the upload fails on the instance", func() {
			w.instances[1].jobs["redis"].uploadErr = &remote.ExitError{Code: 2, Stderr: "tar: ./dump.rdb: Cannot write: No space left on device"}
			err := restore()
			Expect(err).To(MatchError(ContainSubstring("No space left on device")))
			Expect(err.Error()).NotTo(ContainSubstring("changed after it was checked"))
			Expect(w.ran()).To(BeEmpty())
		})

		It("refuses an artifact whose instances the deployment lacks", func() {
			w.instances = w.instances[:1]
			err := restore()
			Expect(err).To(MatchError(ContainSubstring("has no instance redis/1")))
			Expect(w.ran()).To(BeEmpty())
		})

		It("still unlocks and reports when a restore script fails", func() {
			w.instances[0].jobs["redis"].failing("restore", errors.New("bad dump"))
			err := restore()
			Expect(err).To(MatchError(ContainSubstring("bad dump")))
			Expect(orchestrator.ExitCode(err)).To(Equal(1))
			Expect(w.ran()).To(ContainElement("api/0 api post-restore-unlock"))
		})
	})

	Describe("PreBackupCheck", func() {
		It("checks without running any script and cleans up", func() {
			w.add("redis", 0, map[string]*fakeJob{"redis": job("pre-backup-lock", "backup")})
			Expect(o.PreBackupCheck(ctx, "dep")).To(Succeed())
			Expect(w.ran()).To(BeEmpty())
			Expect(w.cleanUps).To(HaveLen(1))
		})
	})
})

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	return info.Size()
}

// panickingLogger panics on the first message that starts with on, in the
// goroutine that logs it.
type panickingLogger struct {
	orchestrator.Logger
	on string
}

func (l panickingLogger) Info(tag, msg string, args ...interface{}) {
	if strings.HasPrefix(msg, l.on) {
		panic(l.on)
	}
	l.Logger.Info(tag, msg, args...)
}

// countingSource counts how often each file of a backup is opened.
type countingSource struct {
	artifact.Source
	mu     sync.Mutex
	opened map[string]int
}

func (c *countingSource) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	c.mu.Lock()
	c.opened[file]++
	c.mu.Unlock()
	return c.Source.Open(ctx, file)
}

func mustOpen(path string) artifact.Source {
	art, err := artifact.Open(path)
	Expect(err).NotTo(HaveOccurred())
	return art
}
