package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/bucket"
	"github.com/bbr-release/bbr/src/transform"
)

// jsonFlag asks for machine-readable output.
var jsonFlag = cli.BoolFlag{Name: "json", Usage: "Print JSON instead of text"}

// validateCommand checks a backup where it is stored, touching no
// platform: `bbr validate --artifact-path DIR|s3://bucket/prefix/<backup>`.
func validateCommand(s session) cli.Command {
	return cli.Command{
		Name:  "validate",
		Usage: "Check a backup without touching any platform: every file is there, every tar is safe and matches its checksums",
		Flags: append([]cli.Flag{
			cli.StringFlag{Name: "artifact-path, a", Usage: "The backup: a <deployment>_<timestamp> directory, or s3://bucket/prefix/<deployment>_<timestamp>"},
			cli.BoolFlag{Name: "allow-missing-checksums", Usage: "Pass a tar the metadata lists without checksums"},
			cli.BoolFlag{Name: "stored-only", Usage: "Check encrypted files by the size and CRC-64 of their stored bytes only, without an identity (their contents are not checked)"},
			jsonFlag,
			identityFlag,
		}, bucketFlags...),
		Before: func(c *cli.Context) error {
			if c.Bool("stored-only") && len(c.StringSlice("identity-file")) > 0 {
				return cli.NewExitError("give --identity-file (check the contents) or --stored-only (check the stored bytes without it), not both", 1)
			}
			return requireFlags(c, "artifact-path")
		},
		Action: func(c *cli.Context) error {
			src, err := validateSource(s.ctx, c)
			if errors.Is(err, transform.ErrNeedsIdentity) {
				return cli.NewExitError(fmt.Sprintf("%v, or --stored-only to check only its stored bytes", err), 1)
			}
			if err != nil {
				return cli.NewExitError(fmt.Sprintf("%v\nVerdict: BAD (it cannot be restored)", err), 1)
			}
			v, err := artifact.Validate(s.ctx, src, artifact.ValidateOptions{
				AllowMissingChecksums: c.Bool("allow-missing-checksums"), StoredOnly: c.Bool("stored-only")})
			if err != nil {
				return cli.NewExitError(err.Error(), 1)
			}
			if c.Bool("json") {
				if err := printJSON(s.streams, struct {
					artifact.Validation
					OK bool `json:"ok"`
				}{v, v.OK()}); err != nil {
					return err
				}
			} else {
				printValidation(s.streams, v)
			}
			if !v.OK() {
				return cli.NewExitError(fmt.Sprintf("%s is not a good backup: %d problems (see above)", v.Location, len(v.Bad())), 1)
			}
			return nil
		},
	}
}

// validateSource opens the backup to validate; with --stored-only an
// encrypted one needs no identity (a compressed one is still decoded).
func validateSource(ctx context.Context, c *cli.Context) (artifact.Source, error) {
	if !c.Bool("stored-only") {
		return restoreSource(ctx, c)
	}
	src, err := storedSource(ctx, c)
	if err != nil {
		return nil, err
	}
	return transform.Decode(src, nil), nil
}

func printValidation(streams Streams, v artifact.Validation) {
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Backup:\t%s\n", v.Location)
	fmt.Fprintf(w, "Deployment:\t%s\n", v.Deployment)
	fmt.Fprintf(w, "Started:\t%s\n", v.Started)
	fmt.Fprintf(w, "Finished:\t%s\n", v.Finished)
	if v.LockWindow > 0 {
		fmt.Fprintf(w, "Lock window:\t%s\n", v.LockWindow.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "Instances:\t%s\n", strings.Join(v.Instances, ", "))
	fmt.Fprintf(w, "Size:\t%s stored, %s plain\n", artifact.HumanSize(v.Size), artifact.HumanSize(v.PlainSize))
	fmt.Fprintf(w, "Transforms:\t%s\n", v.Transforms)
	if len(v.Recipients) > 0 {
		fmt.Fprintf(w, "Encrypted to:\t%s\n", strings.Join(v.Recipients, ", "))
	}
	_ = w.Flush()
	fmt.Fprintln(streams.Out, "Files:")
	w = tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	for _, f := range v.Files {
		verdict := "ok"
		if !f.ContentsChecked {
			verdict = "ok (stored bytes only)"
		}
		if f.Problem != "" {
			verdict = "BAD: " + f.Problem
		}
		files := fmt.Sprintf("%d files", f.Files)
		if f.Files == 1 {
			files = "1 file"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", f.StoredAs, artifact.HumanSize(f.Size), files, verdict)
	}
	_ = w.Flush()
	for _, p := range v.Problems {
		fmt.Fprintf(streams.Out, "  BAD: %s\n", p)
	}
	switch {
	case v.OK() && !v.ContentsChecked():
		fmt.Fprintln(streams.Out, "Verdict: GOOD as stored (every file is there and its stored bytes match; the encrypted contents were not checked: give --identity-file for that)")
	case v.OK():
		fmt.Fprintln(streams.Out, "Verdict: GOOD (every file is there, is a safe tar, and matches its checksums)")
	default:
		fmt.Fprintf(streams.Out, "Verdict: BAD (%d problems)\n", len(v.Bad()))
	}
}

// listCommand lists the backups at a destination:
// `bbr list --artifact-path DIR|s3://bucket/prefix`.
func listCommand(s session) cli.Command {
	dests := &destinations{}
	return cli.Command{
		Name:  "list",
		Usage: "List the backups in a directory or a bucket, newest first, with their status",
		Flags: append([]cli.Flag{
			cli.StringFlag{Name: "artifact-path, a", Usage: "A directory of backups (default: the working directory), or s3://bucket/prefix"},
			jsonFlag,
		}, bucketFlags...),
		Action: func(c *cli.Context) error {
			dest, err := dests.get(s.ctx, c)
			if err != nil {
				return cli.NewExitError(err.Error(), 1)
			}
			all, err := dest.List(s.ctx)
			if err != nil {
				return cli.NewExitError(fmt.Sprintf("listing the backups at %s: %v", dest, err), 1)
			}
			if c.Bool("json") {
				return printJSON(s.streams, listing(all))
			}
			if len(all) == 0 {
				fmt.Fprintf(s.streams.Out, "No backups at %s.\n", dest)
				return nil
			}
			w := tabwriter.NewWriter(s.streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tDEPLOYMENT\tTIME\tSTATUS\tSIZE\tTRANSFORMS")
			for _, b := range all {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.Deployment, b.Time.Format(time.RFC3339), b.State, artifact.HumanSize(b.Size), orDash(b.Transforms))
			}
			return w.Flush()
		},
	}
}

type listed struct {
	Name       string    `json:"name"`
	Deployment string    `json:"deployment"`
	Time       time.Time `json:"time"`
	Status     string    `json:"status"`
	Why        string    `json:"why,omitempty"`
	Size       int64     `json:"size"`
	// Transforms is "none", "zstd", "age" or "zstd+age"; empty when the
	// backup's metadata could not be read.
	Transforms string `json:"transforms"`
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func listing(all []artifact.Stored) []listed {
	out := []listed{}
	for _, b := range all {
		l := listed{Name: b.Name, Deployment: b.Deployment, Time: b.Time, Status: b.State.String(), Size: b.Size, Transforms: b.Transforms}
		if b.Why != nil {
			l.Why = b.Why.Error()
		}
		out = append(out, l)
	}
	return out
}

func printJSON(streams Streams, v any) error {
	enc := json.NewEncoder(streams.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return errors.New("writing JSON: " + err.Error())
	}
	return nil
}

// exportCommand writes a compressed or encrypted backup out as the plain
// directory upstream bbr writes: `bbr export --artifact-path B --to DIR`.
func exportCommand(s session) cli.Command {
	return cli.Command{
		Name:  "export",
		Usage: "Write a backup out in upstream's plain format (decompressed, decrypted), for upstream bbr or for inspection",
		Flags: append([]cli.Flag{
			cli.StringFlag{Name: "artifact-path, a", Usage: "The backup: a <deployment>_<timestamp> directory, or s3://bucket/prefix/<deployment>_<timestamp>"},
			cli.StringFlag{Name: "to", Usage: "The directory to write the plain <deployment>_<timestamp> into (it holds the plain tars, and a manifest's credentials: keep it safe)"},
			identityFlag,
		}, bucketFlags...),
		Before: func(c *cli.Context) error { return requireFlags(c, "artifact-path", "to") },
		Action: func(c *cli.Context) error {
			if bucket.IsURL(c.String("to")) {
				return cli.NewExitError("--to must be a local directory: bbr export writes the plain backup there", 1)
			}
			src, err := restoreSource(s.ctx, c)
			if err != nil {
				return cli.NewExitError(err.Error(), 1)
			}
			name := path.Base(strings.TrimRight(src.Location(), "/"))
			location, err := artifact.Export(s.ctx, src, name, artifact.Local{Dir: c.String("to")})
			if err != nil && location != "" {
				err = fmt.Errorf("%w (what was written is marked failed: %s)", err, location)
			}
			if err != nil {
				return cli.NewExitError(fmt.Sprintf("exporting %s: %v", src.Location(), err), 1)
			}
			fmt.Fprintf(s.streams.Out, "Exported %s to %s (plain, upstream's format; every tar checked against its checksums).\n", src.Location(), location)
			return nil
		},
	}
}
