package cli

import (
	"context"
	"fmt"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/transform"
)

// encodeFlags store new backups compressed and/or encrypted. Only public
// keys are given: the machine taking backups never holds a private key.
var encodeFlags = []cli.Flag{
	cli.BoolFlag{Name: "compress", Usage: "Store each file compressed with zstd (<file>.zst)"},
	cli.IntFlag{Name: "compress-level", Usage: "The zstd level: 1 (fastest) to 19 (smallest); default 3. Implies --compress"},
	cli.StringSliceFlag{Name: "encrypt-to", Usage: "Encrypt each file, and the manifest, with age to this public key (age1... or an SSH public key; <file>.age); repeat for more recipients"},
	cli.StringSliceFlag{Name: "encrypt-to-file", Usage: "Encrypt to every public key in this file, one per line (as age -R); repeatable"},
}

// identityFlag decrypts an encrypted backup.
var identityFlag = cli.StringSliceFlag{Name: "identity-file, i", EnvVar: "BBR_IDENTITY_FILE",
	Usage: "An age identity file (age-keygen) or unprotected SSH private key that decrypts the backup (as age -i); repeatable"}

// encodeOptions reads the encode flags; recipients are parsed here, so a
// wrong key fails before anything is contacted.
func encodeOptions(c *cli.Context) (transform.Options, error) {
	// A level alone asks for compression at that level.
	o := transform.Options{Compress: c.Bool("compress") || c.IsSet("compress-level"), Level: c.Int("compress-level")}
	var err error
	if keys, files := c.StringSlice("encrypt-to"), c.StringSlice("encrypt-to-file"); len(keys)+len(files) > 0 {
		if len(keys) > 0 {
			if o.Recipients, err = transform.ParseRecipients(keys); err != nil {
				return o, fmt.Errorf("--encrypt-to: %w", err)
			}
		}
		for _, f := range files {
			rs, err := transform.ReadRecipientsFile(f)
			if err != nil {
				return o, fmt.Errorf("--encrypt-to-file: %w", err)
			}
			o.Recipients = append(o.Recipients, rs...)
		}
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("--compress-level: %w", err)
	}
	return o, nil
}

// decodeOptions reads the identity files (never echoing their content).
func decodeOptions(c *cli.Context) (transform.Options, error) {
	ids, err := transform.ReadIdentityFiles(c.StringSlice("identity-file"))
	return transform.Options{Identities: ids}, err
}

// decoded wraps src to decode its files, and refuses, before anything
// else happens, an encrypted backup the identities given cannot read.
func decoded(ctx context.Context, c *cli.Context, src artifact.Source) (artifact.Source, error) {
	o, err := decodeOptions(c)
	if err != nil {
		return nil, err
	}
	src = transform.Decode(src, o.Identities)
	if err := transform.CheckIdentities(ctx, src); err != nil {
		return nil, err
	}
	return src, nil
}
