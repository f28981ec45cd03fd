package bucket

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"

	"github.com/bbr-release/bbr/src/artifact"
)

// unknownSize marks an object the metadata names that this writer did
// not store: it must exist, whatever its size.
const unknownSize = -1

// recordWritten notes an object stored whole, for Finish to check.
func (w *writer) recordWritten(file string, size int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written == nil {
		w.written = map[string]int64{}
	}
	w.written[file] = size
}

// expected is every object the backup must hold before it is marked
// good, by size: those written, and those the metadata names (w.mu
// held).
func (w *writer) expected() map[string]int64 {
	out := maps.Clone(w.written)
	if out == nil {
		out = map[string]int64{}
	}
	for _, name := range artifact.StoredNames(w.meta) {
		if _, ok := out[name]; !ok {
			out[name] = unknownSize
		}
	}
	return out
}

// checkStored stats each expected object of backup: another run's
// retention, or an operator, may have removed or replaced it while the
// backup was written, and its metadata must then not be written.
func (d *Destination) checkStored(ctx context.Context, backup string, expected map[string]int64) error {
	var mu sync.Mutex
	var changed []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, file := range slices.Sorted(maps.Keys(expected)) {
		g.Go(func() error {
			info, err := d.core.Client.StatObject(gctx, d.cfg.Bucket, d.key(backup, file), minio.StatObjectOptions{})
			why := ""
			switch code := minio.ToErrorResponse(err).Code; {
			case code == "NoSuchKey" || code == "NotFound":
				why = "missing"
			case err != nil:
				return fmt.Errorf("checking %s/%s/%s: %w", d, backup, file, explain(d.String(), err))
			case expected[file] != unknownSize && info.Size != expected[file]:
				why = fmt.Sprintf("%d bytes, %d written", info.Size, expected[file])
			}
			if why != "" {
				mu.Lock()
				changed = append(changed, file+" ("+why+")")
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	slices.Sort(changed)
	return artifact.FilesChanged(changed)
}
