package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/bbr-release/bbr/src/artifact"
)

// Destination is a bucket prefix holding backups, one "folder" each:
//
//	<prefix>/<deployment>_<timestamp>/<group>-<index>-<job>.tar
//	<prefix>/<deployment>_<timestamp>/manifest.yml   (with --with-manifest)
//	<prefix>/<deployment>_<timestamp>/metadata       (written last: the mark of a good backup)
//	<prefix>/<deployment>_<timestamp>/FAILED         (a failed backup, and why)
//
// A backup is good when its metadata exists and reads and it has no
// FAILED object; one without metadata failed or is still running.
type Destination struct {
	cfg   Config
	core  *minio.Core
	sse   encrypt.ServerSide
	parts *parts
}

var _ artifact.Destination = (*Destination)(nil)

// New checks cfg, connects, and checks the bucket can be reached with
// these credentials, so that a wrong key or a missing bucket is found
// before anything is locked.
func New(ctx context.Context, cfg Config) (*Destination, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	core, err := newCore(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	sse, err := serverSide(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	d := &Destination{cfg: cfg, core: core, sse: sse, parts: newParts(cfg.PartSize, cfg.Concurrency)}
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// check lists one key under the prefix: it needs the credentials, the
// bucket and the endpoint to be right, and s3:ListBucket, which every
// backup needs anyway.
func (d *Destination) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for o := range d.core.Client.ListObjectsIter(ctx, d.cfg.Bucket, minio.ListObjectsOptions{Prefix: d.dirKey(""), MaxKeys: 1}) {
		if o.Err != nil {
			return explain(d.String(), o.Err)
		}
		break
	}
	return nil
}

func (d *Destination) String() string { return d.cfg.String() }

// dirKey is the key prefix of a backup ("" is the destination's).
func (d *Destination) dirKey(backup string) string {
	k := path.Join(d.cfg.Prefix, backup)
	if k == "" || k == "." {
		return ""
	}
	return k + "/"
}

func (d *Destination) key(backup, file string) string { return d.dirKey(backup) + file }

// Create starts a backup; nothing marks it good until Finish.
func (d *Destination) Create(ctx context.Context, backup string, start time.Time) (artifact.Writer, error) {
	if err := artifact.CheckBackupName(backup); err != nil {
		return nil, err
	}
	objects, err := d.objects(ctx, d.dirKey(backup))
	if err != nil {
		return nil, explain(d.String(), err)
	}
	if len(objects) > 0 {
		return nil, fmt.Errorf("%s/%s already exists", d, backup)
	}
	return &writer{d: d, ctx: ctx, backup: backup, meta: artifact.NewMetadata(start)}, nil
}

// objects lists the keys under prefix with their sizes.
func (d *Destination) objects(ctx context.Context, prefix string) (out map[string]int64, err error) {
	err = retryStalled(ctx, func() error {
		out = map[string]int64{}
		for o := range d.core.Client.ListObjectsIter(ctx, d.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				return o.Err
			}
			out[o.Key] = o.Size
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// List groups the objects under the prefix by backup and reads each
// finished backup's metadata to tell good from unreadable.
func (d *Destination) List(ctx context.Context) ([]artifact.Stored, error) {
	objects, err := d.objects(ctx, d.dirKey(""))
	if err != nil {
		return nil, explain(d.String(), err)
	}
	// A run killed mid-upload may have left only an unfinished multipart
	// upload: it is listed (failed) so that retention aborts it.
	uploads, err := d.Uploads(ctx)
	if err != nil {
		return nil, err
	}
	files := map[string]map[string]bool{} // backup -> its stored files
	note := func(key string, stored bool) {
		backup, file, ok := strings.Cut(strings.TrimPrefix(key, d.dirKey("")), "/")
		if !ok || strings.Contains(file, "/") {
			return
		}
		if files[backup] == nil {
			files[backup] = map[string]bool{}
		}
		files[backup][file] = files[backup][file] || stored
	}
	for key := range objects {
		note(key, true)
	}
	for _, key := range uploads {
		note(key, false)
	}
	var out []artifact.Stored
	for backup, have := range files {
		deployment, t, ok := artifact.ParseBackupName(backup)
		if !ok {
			continue
		}
		b := artifact.Stored{Name: backup, Deployment: deployment, Time: t}
		for file := range have {
			b.Size += objects[d.key(backup, file)]
		}
		switch {
		case have[artifact.FailedFile]:
			b.State, b.Why = artifact.Failed, errors.New("it failed")
		case !have[artifact.MetadataFile]:
			b.State, b.Why = artifact.InProgress, errors.New("it has not finished (no metadata): still running, or interrupted")
		default:
			meta, err := d.readMetadata(ctx, backup)
			if err != nil {
				b.State, b.Why = artifact.Unreadable, err
			} else if missing := missingFiles(meta, have); len(missing) > 0 {
				// Half deleted, or damaged: never good, so retention removes it.
				b.State, b.Why = artifact.Failed, fmt.Errorf("its metadata names files it lacks: %s", strings.Join(missing, ", "))
			} else {
				b.Transforms = meta.Transforms()
			}
		}
		out = append(out, b)
	}
	artifact.SortNewestFirst(out)
	return out, nil
}

func missingFiles(meta artifact.Metadata, have map[string]bool) []string {
	var missing []string
	for file := range meta.Files() {
		if stored := meta.StoredName(file); !have[stored] {
			missing = append(missing, stored)
		}
	}
	slices.Sort(missing)
	return missing
}

// Open opens a good backup: its metadata, and the sizes of its files.
func (d *Destination) Open(ctx context.Context, name string) (artifact.Source, error) {
	if err := artifact.CheckBackupName(name); err != nil {
		return nil, err
	}
	objects, err := d.objects(ctx, d.dirKey(name))
	if err != nil {
		return nil, explain(d.String(), err)
	}
	where := d.String() + "/" + name
	if len(objects) == 0 {
		return nil, fmt.Errorf("there is no backup %s", where)
	}
	if _, failed := objects[d.key(name, artifact.FailedFile)]; failed {
		return nil, fmt.Errorf("%s is a failed backup and cannot be restored: %s", where, d.failure(ctx, name))
	}
	if _, ok := objects[d.key(name, artifact.MetadataFile)]; !ok {
		return nil, fmt.Errorf("%s is an incomplete backup (still running, or interrupted: it has no metadata) and cannot be restored", where)
	}
	meta, err := d.readMetadata(ctx, name)
	if err != nil {
		return nil, err
	}
	sizes := map[string]int64{}
	for key, size := range objects {
		sizes[strings.TrimPrefix(key, d.dirKey(name))] = size
	}
	return &source{d: d, name: name, meta: meta, sizes: sizes}, nil
}

func (d *Destination) readMetadata(ctx context.Context, backup string) (artifact.Metadata, error) {
	raw, err := d.get(ctx, d.key(backup, artifact.MetadataFile), artifact.MaxMetadataSize)
	if err != nil {
		return artifact.Metadata{}, fmt.Errorf("reading the metadata of %s/%s: %w", d, backup, err)
	}
	m, err := artifact.ParseMetadata(raw)
	if err != nil {
		return m, fmt.Errorf("%s/%s/metadata: %w", d, backup, err)
	}
	return m, nil
}

// failure is the first line of a failed backup's reason.
func (d *Destination) failure(ctx context.Context, backup string) string {
	raw, err := d.get(ctx, d.key(backup, artifact.FailedFile), 64<<10)
	if err != nil {
		return "its FAILED object cannot be read"
	}
	return artifact.FailureReason(string(raw))
}

// get reads a small object whole, refusing one larger than limit.
func (d *Destination) get(ctx context.Context, key string, limit int64) ([]byte, error) {
	body, err := d.openObject(ctx, key)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	raw, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err == nil && int64(len(raw)) > limit {
		err = fmt.Errorf("%s is larger than %d bytes", key, limit)
	}
	return raw, err
}

// openObject streams an object; a missing one is fs.ErrNotExist. A
// body that stalls is asked for again from where it stopped.
func (d *Destination) openObject(ctx context.Context, key string) (io.ReadCloser, error) {
	body, info, _, err := d.core.GetObject(ctx, d.cfg.Bucket, key, minio.GetObjectOptions{})
	if code := minio.ToErrorResponse(err).Code; code == "NoSuchKey" {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, explain(d.String(), err))
	}
	return &resumingBody{ctx: ctx, d: d, key: key, etag: info.ETag, size: info.Size, body: body}, nil
}

// Delete removes every object of the backup and aborts its unfinished
// multipart uploads (those a killed run left).
func (d *Destination) Delete(ctx context.Context, name string) error {
	if err := artifact.CheckBackupName(name); err != nil {
		return err
	}
	objects, err := d.objects(ctx, d.dirKey(name))
	if err != nil {
		return explain(d.String(), err)
	}
	// The metadata goes first, and alone: a backup half deleted must not
	// look good.
	if _, ok := objects[d.key(name, artifact.MetadataFile)]; ok {
		if err := d.core.RemoveObject(ctx, d.cfg.Bucket, d.key(name, artifact.MetadataFile), minio.RemoveObjectOptions{}); err != nil {
			return explain(d.String(), err)
		}
	}
	var errs []error
	for key := range objects {
		if key != d.key(name, artifact.MetadataFile) {
			errs = append(errs, d.core.RemoveObject(ctx, d.cfg.Bucket, key, minio.RemoveObjectOptions{}))
		}
	}
	errs = append(errs, d.abortUploads(ctx, d.dirKey(name)))
	return explain(d.String(), errors.Join(errs...))
}

// abortUploads aborts every unfinished multipart upload under prefix.
func (d *Destination) abortUploads(ctx context.Context, prefix string) error {
	uploads, err := d.uploads(ctx, prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range uploads {
		errs = append(errs, d.abort(ctx, u.Key, u.UploadID))
	}
	return errors.Join(errs...)
}

// Uploads lists the keys of the unfinished multipart uploads under the
// prefix (for operators and tests: a good run leaves none).
func (d *Destination) Uploads(ctx context.Context) ([]string, error) {
	uploads, err := d.uploads(ctx, d.dirKey(""))
	if err != nil {
		return nil, explain(d.String(), err)
	}
	var keys []string
	for _, u := range uploads {
		keys = append(keys, u.Key)
	}
	return keys, nil
}

func (d *Destination) uploads(ctx context.Context, prefix string) (out []minio.ObjectMultipartInfo, err error) {
	err = retryStalled(ctx, func() error {
		out = nil
		for u := range d.core.Client.ListIncompleteUploads(ctx, d.cfg.Bucket, prefix, true) {
			if minio.ToErrorResponse(u.Err).Code == "NoSuchUpload" {
				return nil // some servers' answer for "none" (gofakes3)
			}
			if u.Err != nil {
				return u.Err
			}
			out = append(out, u)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
