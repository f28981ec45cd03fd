// Package jobtemplates holds the tests of the release's errand job
// templates (jobs/backup, jobs/restore): each is rendered the way the
// Director renders it (ERB evaluated by Ruby through bosh-cli's renderer,
// with p, if_p and spec, the manifest's properties over the spec's
// defaults) and its config is read back with the errand's own parser.
package jobtemplates
