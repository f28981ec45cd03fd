// Package concourse holds the specs of the reference Concourse pipelines
// and tasks in concourse/: their structure here, their scripts run as
// Concourse runs them against the lab in src/tests/labsuite.
package concourse
