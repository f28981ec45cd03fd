package artifact

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"sort"

	"golang.org/x/sync/errgroup"
)

// OpenFunc opens one of a backup's files.
type OpenFunc func(ctx context.Context, file string) (io.ReadCloser, error)

// VerifyFiles reads every tar meta names through open and compares each
// file's checksum, one tar per CPU at a time (hashing is the cost). It
// returns an error naming every corrupt or missing file, in name order,
// or ctx's error once ctx is done: a large artifact takes minutes to
// read, and a signal should not wait for that.
func VerifyFiles(ctx context.Context, meta Metadata, open OpenFunc) error {
	files := meta.Files()
	names := sortedNames(files)
	errs := make([]error, len(names))
	eachInParallel(names, func(i int, name string) {
		errs[i] = verifyFile(ctx, open, name, files[name], false)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func sortedNames(files map[string]Checksums) []string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// eachInParallel runs f for every name, one per CPU at a time (hashing
// is the cost), and waits for all.
func eachInParallel(names []string, f func(i int, name string)) {
	var g errgroup.Group
	g.SetLimit(runtime.NumCPU())
	for i, name := range names {
		g.Go(func() error {
			f(i, name)
			return nil
		})
	}
	_ = g.Wait()
}

// Verify reads every tar src's metadata names, through src (so decoded
// when stored compressed or encrypted), and checks its checksums.
func Verify(ctx context.Context, src Source) error {
	return VerifyFiles(ctx, src.Metadata(), src.Open)
}

// CheckStored is the check a restore makes before it touches the
// platform, without reading the tars (the upload checks every byte as it
// streams them, see CopyVerified): every file the metadata names has
// checksums and is stored.
func CheckStored(src Source) error {
	meta := src.Metadata()
	stored, err := src.Files()
	if err != nil {
		return fmt.Errorf("listing %s: %w", src.Location(), err)
	}
	var errs []error
	for _, name := range sortedNames(meta.Files()) {
		switch {
		case meta.Files()[name] == nil:
			errs = append(errs, fmt.Errorf("backup is corrupted: the metadata has no checksums for %s", name))
		case !hasKey(stored, meta.StoredName(name)):
			errs = append(errs, fmt.Errorf("backup is corrupted: %s is missing", meta.StoredName(name)))
		}
	}
	return errors.Join(errs...)
}

func hasKey(m map[string]int64, k string) bool {
	_, ok := m[k]
	return ok
}

// verifyFile checks one tar: its entries pass SumTar's safety rules and
// its checksums are want's. A nil want (no checksums recorded) fails
// unless allowMissing.
func verifyFile(ctx context.Context, open OpenFunc, name string, want Checksums, allowMissing bool) error {
	f, err := open(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup is corrupted: %s is missing", name)
	}
	if errors.Is(err, errNotRegular) {
		return fmt.Errorf("backup is corrupted: %w", err)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	got, err := SumTar(bufio.NewReaderSize(contextReader{ctx, f}, ioBufferSize))
	if err != nil {
		return fmt.Errorf("backup is corrupted: %s: %w", name, err)
	}
	// A job that backed up nothing has "checksums: {}" (an empty map, which
	// matches only a tar without files); a missing or null key is nil.
	if want == nil {
		if allowMissing {
			return nil
		}
		return fmt.Errorf("backup is corrupted: the metadata has no checksums for %s", name)
	}
	if diff := Compare(want, got); diff != nil {
		return fmt.Errorf("backup is corrupted: checksums don't match for %s: %v", name, diff)
	}
	return nil
}
