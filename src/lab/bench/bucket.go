package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/bbr-release/bbr/src/lab/objectstore"
)

// The bucket figures, on the scenario marked Bucket (s1): "ours-s3"
// backs up to and restores from a SeaweedFS bucket, "ours" restores the
// local backup (key s1r), and "s3-floor" is the server's own ceiling:
// one PutObject of the same data from a local file.
const (
	toolBucket    = "ours-s3"
	toolS3Floor   = "s3-floor"
	restoreSuffix = "r"
)

// startBucket runs SeaweedFS with its data in RAM when /dev/shm is there:
// in production the bucket is another machine's disk, so this one's
// should not pay for it.
func (b *Bench) startBucket() (stop func(), err error) {
	dir := filepath.Join(b.opts.Work, "s3")
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		if dir, err = os.MkdirTemp("/dev/shm", "bbr-bench-s3-"); err != nil {
			return nil, err
		}
	}
	s, err := objectstore.Start(b.opts.Weed, dir)
	if err != nil {
		return nil, err
	}
	if err := s.CreateBucket("bench"); err != nil {
		s.Stop()
		return nil, err
	}
	// SeaweedFS allocates a new bucket's volumes on its first write, for
	// seconds: a bucket in use has them.
	if err := s.Warm("bench"); err != nil {
		s.Stop()
		return nil, err
	}
	b.s3 = s
	b.s3Env = []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint, "AWS_REGION=us-east-1", "BBR_S3_ADDRESSING=path"}
	return func() { s.Stop(); _ = os.RemoveAll(dir) }, nil
}

// bucketRuns measures, for s, the local restore of the local backup in
// art, then a backup to the bucket and its restore, then the server's
// ceiling.
func (b *Bench) bucketRuns(ctx context.Context, s Scenario, round int, art string) error {
	restore := s
	restore.Key = s.Key + restoreSuffix
	run, err := b.measure(ctx, restore, "ours", round, b.opts.BBR, nil, "deployment", "-d", s.Deployment, "restore", "--artifact-path", art)
	if err != nil {
		return err
	}
	b.record(run)

	prefix := fmt.Sprintf("s3://bench/round-%d", round)
	if err := b.backup(ctx, s, toolBucket, round, b.opts.BBR, b.s3Env, "--artifact-path", prefix); err != nil {
		return err
	}
	name, err := b.onlyBackup(ctx, fmt.Sprintf("round-%d/", round))
	if err != nil {
		return err
	}
	run, err = b.measure(ctx, restore, toolBucket, round, b.opts.BBR, b.s3Env, "deployment", "-d", s.Deployment, "restore", "--artifact-path", prefix+"/"+name)
	if err != nil {
		return err
	}
	b.record(run)

	dep, _ := b.lab.Find(s.Deployment)
	run, err = b.s3Floor(ctx, s, dep.Instances[0].Root, round)
	if err != nil {
		return err
	}
	b.record(run)
	return nil
}

// onlyBackup is the one backup under prefix in the bench bucket.
func (b *Bench) onlyBackup(ctx context.Context, prefix string) (string, error) {
	c, err := b.s3.Client()
	if err != nil {
		return "", err
	}
	var names []string
	for o := range c.ListObjectsIter(ctx, "bench", minio.ListObjectsOptions{Prefix: prefix}) {
		if o.Err != nil {
			return "", o.Err
		}
		names = append(names, filepath.Base(o.Key))
	}
	if len(names) != 1 {
		return "", fmt.Errorf("expected one backup under %s in the bucket, found %v", prefix, names)
	}
	return names[0], nil
}

// s3Floor uploads the scenario's data file with a plain client (minio-go's
// PutObject, its own multipart defaults): what the server takes at best.
func (b *Bench) s3Floor(ctx context.Context, s Scenario, instanceRoot string, round int) (Run, error) {
	c, err := b.s3.Client()
	if err != nil {
		return Run{}, err
	}
	f, err := os.Open(filepath.Join(instanceRoot, "store", jobName(s, 0), "data"))
	if err != nil {
		return Run{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Run{}, err
	}
	settle()
	start := time.Now()
	if _, err := c.PutObject(ctx, "bench", fmt.Sprintf("floor/%d", round), f, info.Size(), minio.PutObjectOptions{}); err != nil {
		return Run{}, fmt.Errorf("s3 floor: %w", err)
	}
	wall := time.Since(start)
	return Run{Scenario: s.Key, Tool: toolS3Floor, Round: round, Wall: wall.Seconds(), MiBps: float64(s.TotalMiB()) / wall.Seconds()}, nil
}
