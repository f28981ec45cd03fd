package instance

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/remote"
)

// checksumScript hashes every regular file under the current directory.
// openssl uses the CPU's SHA instructions (about 4x coreutils sha256sum
// here), but its line format cannot carry a file name with a newline or a
// backslash unambiguously: such trees, and instances without openssl, use
// NUL-separated `sha256sum -z`. (Upstream's `xargs shasum` broke on spaces.)
const checksumScript = `nl=$(printf '\n_'); nl=${nl%_}
if command -v openssl >/dev/null 2>&1 && [ -z "$(find . -type f \( -name "*$nl*" -o -name '*\\*' \) -print -quit)" ]; then
  echo '` + opensslMarker + `'
  find . -type f -print0 | xargs -0 -r openssl dgst -sha256 -r
else
  find . -type f -print0 | xargs -0 -r sha256sum -z
fi`

// opensslMarker starts output in openssl's "<hex> *<name>" line format.
const opensslMarker = "#openssl"

// Checksums hashes every regular file of a staging directory.
func (c *Conn) Checksums(ctx context.Context, name string) (artifact.Checksums, error) {
	dir, err := c.stagingDir(name)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := c.r.Run(ctx, sudoSh("cd \"$1\" || exit 1\n"+checksumScript, dir), nil, &out); err != nil {
		return nil, fmt.Errorf("checksumming %s: %w", dir, err)
	}
	return ParseChecksums(out.Bytes())
}

// ParseChecksums parses the checksum script's output: openssl lines after
// the marker, or `sha256sum -z` records ("<hex>  <name>\0").
// Every name must be one `find .` prints ("./" and a clean relative path),
// every sum a lowercase sha256, and no name may repeat.
func ParseChecksums(out []byte) (artifact.Checksums, error) {
	if rest, ok := bytes.CutPrefix(out, []byte(opensslMarker+"\n")); ok {
		return parseRecords(bytes.Split(rest, []byte{'\n'}), " *")
	}
	return parseRecords(bytes.Split(out, []byte{0}), "  ")
}

func parseRecords(records [][]byte, sep string) (artifact.Checksums, error) {
	sums := artifact.Checksums{}
	for _, rec := range records {
		if len(rec) == 0 {
			continue
		}
		sum, name, ok := bytes.Cut(rec, []byte(sep))
		if !ok || !artifact.ValidFileName(string(name)) || !artifact.IsSHA256Hex(string(sum)) {
			return nil, fmt.Errorf("unexpected checksum output %q", truncate(string(rec), 120))
		}
		if _, dup := sums[string(name)]; dup {
			return nil, fmt.Errorf("checksum output names %q twice", truncate(string(name), 120))
		}
		sums[string(name)] = string(sum)
	}
	return sums, nil
}

// StreamOut writes a tar of a staging directory to w.
func (c *Conn) StreamOut(ctx context.Context, name string, w io.Writer) error {
	dir, err := c.stagingDir(name)
	if err != nil {
		return err
	}
	return c.r.Run(ctx, "sudo tar -C "+remote.Quote(dir)+" -c .", nil, w)
}

// StreamIn extracts the tar read from rd into a staging directory, creating
// it (0700; --no-overwrite-dir keeps that mode whatever the archive's "./"
// says, 0755 in upstream's artifacts). tar is exec'd so that a cancelled
// run's SIGTERM, which sudo passes to the shell, reaches it.
//
// The tar was checked entry by entry before it is sent (artifact.SumTar:
// nothing below a link, headers GNU tar reads as archive/tar does). The
// options keep GNU tar's own guard as a second line: without -P, -h or
// --keep-directory-symlink it never writes through a symbolic link it
// extracted, and delays links that point up or out until the end.
func (c *Conn) StreamIn(ctx context.Context, name string, rd io.Reader) error {
	dir, err := c.stagingDir(name)
	if err != nil {
		return err
	}
	return c.r.Run(ctx, sudoSh(`mkdir -p -m 0700 "$1" && exec tar -C "$1" --no-overwrite-dir -x`, dir), rd, nil)
}
