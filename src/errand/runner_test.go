package errand_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
	"github.com/bbr-release/bbr/src/errand"
	"github.com/bbr-release/bbr/src/schedule"
)

func names(dir string) []string {
	entries, err := os.ReadDir(dir)
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

var _ = Describe("the backup errand's edge cases", func() {
	var (
		root  string
		out   bytes.Buffer
		clock time.Time
		cfg   errand.Config
	)

	BeforeEach(func() {
		root = GinkgoT().TempDir()
		out.Reset()
		clock = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
		var err error
		cfg, err = errand.ParseConfig([]byte(validConfig + "artifact_directory: " + root + "\n"))
		Expect(err).NotTo(HaveOccurred())
		cfg.Deployments = []string{"cf"}
	})

	runner := func(backup func(ctx context.Context, dep string, dest artifact.Destination) (string, error)) errand.Runner {
		return errand.Runner{Config: cfg, Backup: backup, Out: &out, Now: func() time.Time { return clock }}
	}
	good := func(_ context.Context, dep string, dest artifact.Destination) (string, error) {
		clock = clock.Add(time.Minute)
		return backupNamed(root, dep, clock, true), nil
	}

	It("reports a run whose backup completed but whose unlock failed as failed, keeps the backup and prunes nothing", func() {
		r := runner(good)
		Expect(r.RunBackup(context.Background())).To(Succeed())
		Expect(r.RunBackup(context.Background())).To(Succeed())
		r.Backup = func(ctx context.Context, dep string, dest artifact.Destination) (string, error) {
			path, _ := good(ctx, dep, dest)
			return path, errors.New("Error attempting to run post-backup-unlock for job redis on redis/0: exit 1")
		}
		out.Reset()
		Expect(r.RunBackup(context.Background())).To(MatchError("1 of 1 deployments failed: cf"))
		Expect(out.String()).To(ContainSubstring("cf failed:\nError attempting to run post-backup-unlock"))
		Expect(out.String()).To(ContainSubstring("Its backup is complete and kept: " + filepath.Join(root, "cf", "cf_20261125T080300Z")))
		Expect(out.String()).NotTo(ContainSubstring("Retention"), "no pruning after a failed run")
		Expect(names(filepath.Join(root, "cf"))).To(HaveLen(3))
	})

	It("backs up the Director VM after the deployments, under its host's folder, reported as a director", func() {
		cfg.BoshDirector = errand.BoshDirector{Host: "10.0.0.6:2222", SSHUser: "bbr"}
		var order []string
		r := runner(func(ctx context.Context, dep string, dest artifact.Destination) (string, error) {
			order = append(order, dep)
			return good(ctx, dep, dest)
		})
		r.BackupDirector = func(_ context.Context, dest artifact.Destination) (string, error) {
			order = append(order, "director at "+dest.String())
			clock = clock.Add(time.Minute)
			return backupNamed(root, "10.0.0.6", clock, true), nil
		}
		Expect(r.RunBackup(context.Background())).To(Succeed())
		Expect(order).To(Equal([]string{"cf", "director at " + filepath.Join(root, "10.0.0.6")}))
		Expect(out.String()).To(ContainSubstring("Backing up the BOSH Director 10.0.0.6\n"))
		Expect(out.String()).To(MatchRegexp(`10\.0\.0\.6\s+ok\s+`))
		raw, err := os.ReadFile(filepath.Join(root, errand.ReportsDir, errand.LastRun))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).To(MatchRegexp(`"name": "10\.0\.0\.6",\s+"kind": "director"`))
		Expect(names(filepath.Join(root, "10.0.0.6"))).To(Equal([]string{"10.0.0.6_20261125T080200Z"}))
		started, ok := errand.LastStart(root)
		Expect(ok).To(BeTrue())
		Expect(started).To(Equal(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)), "what the scheduler reads back")
		_, ok = errand.LastStart(filepath.Join(root, "none"))
		Expect(ok).To(BeFalse())
	})

	It("leaves its own deployment out of all_deployments, saying so", func() {
		cfg.Deployments, cfg.AllDeployments, cfg.OwnDeployment = nil, true, "jumpbox"
		var backedUp []string
		r := runner(func(ctx context.Context, dep string, dest artifact.Destination) (string, error) {
			backedUp = append(backedUp, dep)
			return good(ctx, dep, dest)
		})
		r.Deployments = func(context.Context) ([]string, error) { return []string{"cf", "jumpbox", "redis"}, nil }
		Expect(r.RunBackup(context.Background())).To(Succeed())
		Expect(backedUp).To(Equal([]string{"cf", "redis"}))
		Expect(out.String()).To(ContainSubstring("Leaving out jumpbox: it is this errand's own deployment"))
	})

	It("never runs two backups of one deployment at once on the instance: the second is refused, the first goes on", func() {
		var second error
		r := runner(nil)
		r.Backup = func(ctx context.Context, dep string, dest artifact.Destination) (string, error) {
			var inner bytes.Buffer
			other := r
			other.Out = &inner
			second = other.RunBackup(ctx) // as the scheduler would, while the errand runs
			Expect(inner.String()).To(ContainSubstring("not started: another backup or restore of cf is running on this instance"))
			return good(ctx, dep, dest)
		}
		Expect(r.RunBackup(context.Background())).To(Succeed())
		Expect(second).To(MatchError("1 of 1 deployments failed: cf"))
		Expect(runner(good).RunBackup(context.Background())).To(Succeed(), "the lock is released when the backup ends")
	})

	It("says where the incomplete artifact of a failed run is", func() {
		r := runner(func(_ context.Context, dep string, dest artifact.Destination) (string, error) {
			return backupNamed(root, dep, clock, false), errors.New("drain failed\nsecond line")
		})
		Expect(r.RunBackup(context.Background())).To(HaveOccurred())
		Expect(out.String()).To(ContainSubstring("cf failed:\ndrain failed\nsecond line\n"))
		Expect(out.String()).To(ContainSubstring("Its artifact is incomplete (never restored, never counted toward keep_last): " +
			filepath.Join(root, "cf", "cf_20261125T080000Z"+artifact.FailedSuffix)))
	})

	It("keeps every good backup with keep_last 0", func() {
		cfg.KeepLast = 0
		r := runner(good)
		for i := 0; i < 4; i++ {
			Expect(r.RunBackup(context.Background())).To(Succeed())
		}
		Expect(names(filepath.Join(root, "cf"))).To(HaveLen(4))
	})

	It("removes a crashed (in-progress) backup once a newer good one exists and the grace has passed, and keeps one that may still run", func() {
		dir, err := errand.Store{Root: root}.Dir("cf")
		Expect(err).NotTo(HaveOccurred())
		_, err = artifact.Create(dir, "cf", clock.Add(-25*time.Hour)) // a crash left it
		Expect(err).NotTo(HaveOccurred())
		_, err = artifact.Create(dir, "cf", clock.Add(-time.Hour)) // another run's, maybe still draining
		Expect(err).NotTo(HaveOccurred())
		_, err = artifact.Create(dir, "cf", clock.Add(time.Hour)) // newer than any good one
		Expect(err).NotTo(HaveOccurred())
		Expect(runner(good).RunBackup(context.Background())).To(Succeed())
		Expect(names(dir)).To(Equal([]string{"cf_20261125T070000Z" + artifact.InProgressSuffix, "cf_20261125T080100Z",
			"cf_20261125T090000Z" + artifact.InProgressSuffix}))
	})

	It("starts nothing more once the errand is stopped, and says so", func() {
		cfg.Deployments = []string{"cf", "redis"}
		ctx, cancel := context.WithCancel(context.Background())
		var started []string
		r := runner(func(ctx context.Context, dep string, dest artifact.Destination) (string, error) {
			started = append(started, dep)
			cancel()
			return "", context.Canceled
		})
		Expect(r.RunBackup(ctx)).To(MatchError("2 of 2 deployments failed: cf, redis"))
		Expect(started).To(Equal([]string{"cf"}))
		Expect(out.String()).To(MatchRegexp(`redis\s+FAILED\s+-\s+0s\s+-\s+not started: the errand was stopped`))
	})

	It("says why it was stopped when its stop has a cause (the scheduler's run_timeout), in the summary and the report", func() {
		cfg.Deployments = []string{"cf", "redis"}
		ctx, cancel := context.WithCancelCause(context.Background())
		r := runner(func(ctx context.Context, dep string, dest artifact.Destination) (string, error) {
			cancel(fmt.Errorf("%w (20m0s)", schedule.ErrRunTimeout))
			return "", fmt.Errorf("backing up %s: %w", dep, ctx.Err())
		})
		Expect(r.RunBackup(ctx)).To(MatchError("2 of 2 deployments failed: cf, redis"))
		why := "the scheduler stopped the run at its run_timeout (20m0s)"
		Expect(out.String()).To(MatchRegexp(`cf\s+FAILED\s+.*backing up cf: context canceled: ` + regexp.QuoteMeta(why)))
		Expect(out.String()).To(MatchRegexp(`redis\s+FAILED\s+-\s+0s\s+-\s+not started: the errand was stopped: ` + regexp.QuoteMeta(why)))
		raw, err := os.ReadFile(filepath.Join(root, errand.ReportsDir, errand.LastRun))
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Count(string(raw), why)).To(Equal(2), string(raw))
	})

	It("fails clearly when all_deployments finds nothing or the Director cannot list", func() {
		cfg.Deployments, cfg.AllDeployments = nil, true
		r := runner(good)
		r.Deployments = func(context.Context) ([]string, error) { return nil, nil }
		Expect(r.RunBackup(context.Background())).To(MatchError("the Director has no deployments to back up"))
		r.Deployments = func(context.Context) ([]string, error) { return nil, errors.New("401 Unauthorized") }
		Expect(r.RunBackup(context.Background())).To(MatchError("listing the Director's deployments: 401 Unauthorized"))
	})

	It("never builds a path from a name the Director lists that is not a BOSH deployment name, and backs up the others", func() {
		cfg.ArtifactDirectory = filepath.Join(root, "store", "artifacts")
		cfg.Deployments, cfg.AllDeployments = nil, true
		var parents []string
		r := runner(func(_ context.Context, dep string, dest artifact.Destination) (string, error) {
			parents = append(parents, dest.String())
			clock = clock.Add(time.Minute)
			return backupNamed(cfg.ArtifactDirectory, dep, clock, true), nil
		})
		r.Deployments = func(context.Context) ([]string, error) {
			return []string{"cf", "../escaped", "..", ".hidden", "a/b", "", "redis"}, nil
		}
		Expect(r.RunBackup(context.Background())).To(MatchError(`5 of 7 deployments failed: "../escaped", "..", ".hidden", "a/b", ""`))
		Expect(parents).To(Equal([]string{filepath.Join(cfg.ArtifactDirectory, "cf"), filepath.Join(cfg.ArtifactDirectory, "redis")}))
		Expect(names(filepath.Join(root, "store"))).To(Equal([]string{"artifacts"}), "nothing written beside the artifact directory")
		Expect(names(cfg.ArtifactDirectory)).To(Equal([]string{".locks", ".reports", "cf", "redis"}), "the locks' and reports' folders cannot be a deployment's")
		Expect(out.String()).To(MatchRegexp(`"\.\./escaped"\s+FAILED\s+-\s+0s\s+-\s+not backed up: the Director lists it, but it is not a BOSH deployment name`))
	})

	It("refuses a deployment folder whose name is not a BOSH deployment name", func() {
		artifacts := filepath.Join(root, "store", "artifacts")
		_, err := errand.Store{Root: artifacts}.Dir("../x")
		Expect(err).To(MatchError(`no folder for deployment "../x" under ` + artifacts + `: not a BOSH deployment name`))
		Expect(names(root)).To(BeEmpty())
	})

	It("reads what went to the bucket back, and fails a deployment whose backup does not validate, pruning nothing", func() {
		cfg.Deployments = []string{"cf", "redis"}
		bucketDir := GinkgoT().TempDir()
		r := runner(func(ctx context.Context, dep string, dest artifact.Destination) (string, error) {
			clock = clock.Add(time.Minute)
			w, err := dest.Create(ctx, artifact.BackupName(dep, clock), clock)
			Expect(err).NotTo(HaveOccurred())
			sums, _, err := w.WriteTar("worker-0-job.tar", bytes.NewReader(destinationtest.MakeTar(nil)))
			Expect(err).NotTo(HaveOccurred())
			Expect(w.AddInstanceArtifact("worker", 0, "job", sums)).To(Succeed())
			Expect(w.Finish(clock, nil)).To(Succeed())
			if dep == "redis" { // the tar goes once the backup is marked good
				Expect(os.Remove(filepath.Join(w.Location(), "worker-0-job.tar"))).To(Succeed())
			}
			return w.Location(), nil
		})
		r.Bucket = func(context.Context) (artifact.Destination, error) { return artifact.Local{Dir: bucketDir}, nil }
		Expect(r.RunBackup(context.Background())).To(MatchError("1 of 2 deployments failed: redis"))
		Expect(out.String()).To(MatchRegexp(`Validated cf_\d{8}T\d{6}Z at ` + bucketDir))
		Expect(out.String()).To(ContainSubstring("redis_20261125T080200Z at " + bucketDir + " was written but does not validate: worker-0-job.tar: missing"))
		Expect(out.String()).To(ContainSubstring("Its artifact is incomplete"))
		Expect(names(bucketDir)).To(HaveLen(2))
	})

	It("refuses to run without deployments", func() {
		cfg.Deployments = nil
		Expect(runner(good).RunBackup(context.Background())).To(MatchError(ContainSubstring("nothing to back up")))
	})
})

var _ = Describe("the restore errand's choice of backup", func() {
	var (
		root     string
		day      time.Time
		restored []string
		r        errand.Runner
	)

	BeforeEach(func() {
		root = GinkgoT().TempDir()
		day = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
		restored = nil
		r = errand.Runner{
			Config: errand.Config{ArtifactDirectory: root},
			Restore: func(_ context.Context, dep string, src artifact.Source) error {
				restored = append(restored, src.Location())
				return nil
			},
			Out: GinkgoWriter,
			Now: time.Now,
		}
		r.Config.Restore.Deployment = "cf"
	})

	It("refuses a named backup that failed, listing the good ones", func() {
		backupNamed(root, "cf", day, true)
		failed := backupNamed(root, "cf", day.Add(time.Hour), false)
		r.Config.Restore.Artifact = filepath.Base(failed)
		Expect(r.RunRestore(context.Background())).To(MatchError(SatisfyAll(
			ContainSubstring("is a failed backup"), ContainSubstring("its good backups at "+filepath.Join(root, "cf")+", newest first: cf_20261125T080000Z"))))
		Expect(restored).To(BeEmpty())
	})

	It("refuses a named backup that does not exist, or is another deployment's", func() {
		r.Config.Restore.Artifact = "cf_20261125T080000Z"
		Expect(r.RunRestore(context.Background())).To(MatchError(ContainSubstring("there is no backup cf_20261125T080000Z at " + filepath.Join(root, "cf") + "; it has no good backup at")))
		backupNamed(root, "cf", day, true)
		Expect(os.Rename(filepath.Join(root, "cf", "cf_20261125T080000Z"), filepath.Join(root, "cf", "redis_20261125T080000Z"))).To(Succeed())
		r.Config.Restore.Artifact = "redis_20261125T080000Z"
		Expect(r.RunRestore(context.Background())).To(MatchError(ContainSubstring("is not a backup of cf (it is one of redis)")))
		// In a bucket every deployment's backups sit side by side: cf_x's
		// are not cf's, although their names start with cf_.
		r.Config.Restore.Artifact = "cf_x_20261125T080000Z"
		Expect(r.RunRestore(context.Background())).To(MatchError(ContainSubstring("is not a backup of cf (it is one of cf_x)")))
		Expect(restored).To(BeEmpty())
	})

	It("never picks a failed or unfinished backup as the newest", func() {
		good := backupNamed(root, "cf", day, true)
		backupNamed(root, "cf", day.Add(time.Hour), false)
		_, err := artifact.Create(filepath.Join(root, "cf"), "cf", day.Add(2*time.Hour))
		Expect(err).NotTo(HaveOccurred())
		Expect(r.RunRestore(context.Background())).To(Succeed())
		Expect(restored).To(Equal([]string{good}))
	})

	It("reports a failed restore with the deployment and the backup", func() {
		good := backupNamed(root, "cf", day, true)
		r.Restore = func(context.Context, string, artifact.Source) error { return errors.New("restore script failed") }
		Expect(r.RunRestore(context.Background())).To(MatchError("restoring cf from " + good + ": restore script failed"))
	})
})
