package bucket

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"

	"github.com/bbr-release/bbr/src/artifact"
)

// statObject is backup's object file as artifact.CheckWritten asks for
// it, before the metadata marks the backup good.
func (d *Destination) statObject(backup string) artifact.StatFunc {
	return func(ctx context.Context, file string) (int64, string, error) {
		info, err := d.core.Client.StatObject(ctx, d.cfg.Bucket, d.key(backup, file), minio.StatObjectOptions{})
		switch code := minio.ToErrorResponse(err).Code; {
		case code == "NoSuchKey" || code == "NotFound":
			return 0, "missing", nil
		case err != nil:
			return 0, "", fmt.Errorf("checking %s/%s/%s: %w", d, backup, file, explain(d.String(), err))
		}
		return info.Size, "", nil
	}
}
