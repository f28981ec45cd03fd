package bucket

import (
	"context"
	"fmt"
	"io"
	"maps"

	"github.com/bbr-release/bbr/src/artifact"
)

// source is a good backup in the bucket. Verify reads every tar once and
// a restore reads each again as it streams it to the instances: no local
// disk is needed, at the cost of downloading the backup twice (see
// docs/storage.md).
type source struct {
	d     *Destination
	name  string
	meta  artifact.Metadata
	sizes map[string]int64
}

func (s *source) Location() string            { return s.d.String() + "/" + s.name }
func (s *source) Metadata() artifact.Metadata { return s.meta }
func (s *source) Size(file string) int64      { return s.sizes[file] }

func (s *source) Files() (map[string]int64, error) { return maps.Clone(s.sizes), nil }

func (s *source) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	if !artifact.ValidArtifactFile(file) {
		return nil, fmt.Errorf("invalid artifact file name %q", file)
	}
	return s.d.openObject(ctx, s.d.key(s.name, file))
}
