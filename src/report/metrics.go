package report

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The metrics, one series per deployment (label deployment) and kind
// (deployment or director), per Prometheus's naming conventions: base
// units, _seconds, _bytes, _timestamp_seconds, _total for the counter.
const (
	MetricLastSuccess   = "bbr_backup_last_success_timestamp_seconds"
	MetricLastAttempt   = "bbr_backup_last_attempt_timestamp_seconds"
	MetricLastOK        = "bbr_backup_last_attempt_success"
	MetricDuration      = "bbr_backup_last_attempt_duration_seconds"
	MetricLockWindow    = "bbr_backup_last_success_lock_window_seconds"
	MetricSize          = "bbr_backup_last_success_size_bytes"
	MetricFailuresTotal = "bbr_backup_failures_total"
)

// The restore metrics, in a textfile of their own per deployment.
const (
	MetricRestoreLastSuccess   = "bbr_restore_last_success_timestamp_seconds"
	MetricRestoreLastAttempt   = "bbr_restore_last_attempt_timestamp_seconds"
	MetricRestoreLastOK        = "bbr_restore_last_attempt_success"
	MetricRestoreDuration      = "bbr_restore_last_attempt_duration_seconds"
	MetricRestoreFailuresTotal = "bbr_restore_failures_total"
)

var help = map[string]string{
	MetricLastSuccess:   "When the deployment's last good backup finished (Unix time).",
	MetricLastAttempt:   "When the deployment's last backup attempt finished (Unix time).",
	MetricLastOK:        "1 if the deployment's last backup attempt made a good backup, else 0.",
	MetricDuration:      "How long the deployment's last backup attempt took.",
	MetricLockWindow:    "How long the last good backup kept the deployment locked (first lock to last unlock).",
	MetricSize:          "What the last good backup stores.",
	MetricFailuresTotal: "Backup attempts of the deployment that failed, since the metrics file was created.",

	MetricRestoreLastSuccess:   "When the deployment's last successful restore finished (Unix time).",
	MetricRestoreLastAttempt:   "When the deployment's last restore attempt finished (Unix time).",
	MetricRestoreLastOK:        "1 if the deployment's last restore attempt succeeded, else 0.",
	MetricRestoreDuration:      "How long the deployment's last restore attempt took.",
	MetricRestoreFailuresTotal: "Restore attempts of the deployment that failed, since the metrics file was created.",
}

// attemptMetrics names one operation's series of an attempt.
type attemptMetrics struct {
	lastSuccess, lastAttempt, lastOK, duration, failures string
}

var (
	backupMetrics  = attemptMetrics{MetricLastSuccess, MetricLastAttempt, MetricLastOK, MetricDuration, MetricFailuresTotal}
	restoreMetrics = attemptMetrics{MetricRestoreLastSuccess, MetricRestoreLastAttempt, MetricRestoreLastOK, MetricRestoreDuration, MetricRestoreFailuresTotal}
)

// MetricsFile is the textfile of a deployment's metrics in dir; the
// name keeps only characters safe in a file name (a Director's IPv6
// address has colons), with a hash of the name when it had others, so
// that two names never share a file; the label keeps the name as it is.
func MetricsFile(dir, kind, deployment string) string {
	name := fmt.Sprintf("bbr_%s_%s", kind, deployment)
	if safe := unsafeChars.ReplaceAllString(name, "_"); safe != name {
		sum := sha256.Sum256([]byte(name))
		name = safe + "_" + hex.EncodeToString(sum[:4])
	}
	return filepath.Join(dir, name+".prom")
}

// RestoreMetricsFile is the textfile of a deployment's restore metrics
// in dir: bbr_restore_<kind>_<name>.prom.
func RestoreMetricsFile(dir, kind, deployment string) string {
	return MetricsFile(dir, OpRestore+"_"+kind, deployment)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// writeMetrics updates d's textfile, its backup's or its restore's.
func writeMetrics(dir string, d Deployment) error {
	if d.Operation == OpRestore {
		return WriteRestoreMetrics(dir, d)
	}
	return WriteMetrics(dir, d)
}

// WriteMetrics updates d's textfile in dir (node_exporter's textfile
// collector reads every *.prom there), carrying over from the file what a
// failed attempt does not change: the last success, its size and lock
// window, and the failure count. Written atomically, 0644.
func WriteMetrics(dir string, d Deployment) error {
	path := MetricsFile(dir, d.Kind, d.Name)
	return updateTextfile(dir, path, d, backupMetrics, []string{MetricLockWindow, MetricSize}, func(values map[string]float64) {
		if d.Good { // a good backup, even if the run failed after it
			values[MetricLastSuccess] = values[MetricLastAttempt]
			values[MetricLockWindow] = d.LockWindowSeconds
			values[MetricSize] = float64(d.Bytes)
		}
	})
}

// WriteRestoreMetrics updates the textfile of d, a restore, in dir, as
// WriteMetrics does a backup's.
func WriteRestoreMetrics(dir string, d Deployment) error {
	path := RestoreMetricsFile(dir, d.Kind, d.Name)
	return updateTextfile(dir, path, d, restoreMetrics, nil, func(values map[string]float64) {
		if d.OK {
			values[MetricRestoreLastSuccess] = values[MetricRestoreLastAttempt]
		}
	})
}

// updateTextfile writes d's attempt to path as m names it, with the last
// success and carried read back from the file; success sets what a
// success changes.
func updateTextfile(dir, path string, d Deployment, m attemptMetrics, carried []string, success func(map[string]float64)) error {
	prev, err := readMetrics(path)
	if err != nil {
		return err
	}
	values := map[string]float64{
		m.lastAttempt: float64(d.Finished.UnixMilli()) / 1000,
		m.duration:    d.Seconds,
		m.lastOK:      0,
		m.failures:    prev[m.failures],
	}
	for _, name := range append(carried, m.lastSuccess) {
		if v, ok := prev[name]; ok {
			values[name] = v
		}
	}
	if d.OK {
		values[m.lastOK] = 1
	} else {
		values[m.failures]++
	}
	success(values)
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"deployment": d.Name, "kind": d.Kind}
	for name, v := range values {
		opts := prometheus.GaugeOpts{Name: name, Help: help[name], ConstLabels: labels}
		if name == m.failures {
			c := prometheus.NewCounter(prometheus.CounterOpts(opts))
			c.Add(v)
			reg.MustRegister(c)
			continue
		}
		g := prometheus.NewGauge(opts)
		g.Set(v)
		reg.MustRegister(g)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the metrics directory: %w", err)
	}
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// readMetrics reads the values of a textfile WriteMetrics wrote; none
// when there is no file yet. A file that does not parse is an error:
// overwriting it would reset the failure count without a word.
func readMetrics(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]float64{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		return nil, fmt.Errorf("%s does not parse as Prometheus metrics (remove it to start over): %w", path, err)
	}
	values := map[string]float64{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				values[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				values[name] = m.GetCounter().GetValue()
			}
		}
	}
	return values, nil
}
