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

var help = map[string]string{
	MetricLastSuccess:   "When the deployment's last good backup finished (Unix time).",
	MetricLastAttempt:   "When the deployment's last backup attempt finished (Unix time).",
	MetricLastOK:        "1 if the deployment's last backup attempt made a good backup, else 0.",
	MetricDuration:      "How long the deployment's last backup attempt took.",
	MetricLockWindow:    "How long the last good backup kept the deployment locked (first lock to last unlock).",
	MetricSize:          "What the last good backup stores.",
	MetricFailuresTotal: "Backup attempts of the deployment that failed, since the metrics file was created.",
}

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

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// WriteMetrics updates d's textfile in dir (node_exporter's textfile
// collector reads every *.prom there), carrying over from the file what a
// failed attempt does not change: the last success, its size and lock
// window, and the failure count. Written atomically, 0644.
func WriteMetrics(dir string, d Deployment) error {
	path := MetricsFile(dir, d.Kind, d.Name)
	prev, err := readMetrics(path)
	if err != nil {
		return err
	}
	values := map[string]float64{
		MetricLastAttempt:   float64(d.Finished.UnixMilli()) / 1000,
		MetricDuration:      d.Seconds,
		MetricLastOK:        0,
		MetricFailuresTotal: prev[MetricFailuresTotal],
	}
	for _, carried := range []string{MetricLastSuccess, MetricLockWindow, MetricSize} {
		if v, ok := prev[carried]; ok {
			values[carried] = v
		}
	}
	if d.OK {
		values[MetricLastOK] = 1
	} else {
		values[MetricFailuresTotal]++
	}
	if d.Good { // a good backup, even if the run failed after it
		values[MetricLastSuccess] = values[MetricLastAttempt]
		values[MetricLockWindow] = d.LockWindowSeconds
		values[MetricSize] = float64(d.Bytes)
	}
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"deployment": d.Name, "kind": d.Kind}
	for name, v := range values {
		opts := prometheus.GaugeOpts{Name: name, Help: help[name], ConstLabels: labels}
		if name == MetricFailuresTotal {
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
