package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli"

	"github.com/bbr-release/bbr/src/artifact"
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
			jsonFlag,
		}, bucketFlags...),
		Before: func(c *cli.Context) error { return requireFlags(c, "artifact-path") },
		Action: func(c *cli.Context) error {
			src, err := restoreSource(s.ctx, c)
			if err != nil {
				return cli.NewExitError(fmt.Sprintf("%v\nVerdict: BAD (it cannot be restored)", err), 1)
			}
			v, err := artifact.Validate(s.ctx, src, artifact.ValidateOptions{AllowMissingChecksums: c.Bool("allow-missing-checksums")})
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
	fmt.Fprintf(w, "Size:\t%s stored (transforms: none)\n", artifact.HumanSize(v.Size))
	_ = w.Flush()
	fmt.Fprintln(streams.Out, "Files:")
	w = tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	for _, f := range v.Files {
		verdict := "ok"
		if f.Problem != "" {
			verdict = "BAD: " + f.Problem
		}
		files := fmt.Sprintf("%d files", f.Files)
		if f.Files == 1 {
			files = "1 file"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", f.Name, artifact.HumanSize(f.Size), files, verdict)
	}
	_ = w.Flush()
	for _, p := range v.Problems {
		fmt.Fprintf(streams.Out, "  BAD: %s\n", p)
	}
	if v.OK() {
		fmt.Fprintln(streams.Out, "Verdict: GOOD (every file is there, is a safe tar, and matches its checksums)")
	} else {
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
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\tnone\n", b.Name, b.Deployment, b.Time.Format(time.RFC3339), b.State, artifact.HumanSize(b.Size))
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
	Transforms []string  `json:"transforms"`
}

func listing(all []artifact.Stored) []listed {
	out := []listed{}
	for _, b := range all {
		l := listed{Name: b.Name, Deployment: b.Deployment, Time: b.Time, Status: b.State.String(), Size: b.Size, Transforms: []string{}}
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
