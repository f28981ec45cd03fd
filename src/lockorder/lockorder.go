// Package lockorder turns the jobs' "should be locked before" metadata into
// the layers in which pre-*-lock scripts run: every job of a layer may lock in
// parallel once all earlier layers are locked. Unlock runs the layers in
// reverse. This is upstream bbr's Kahn ordering.
package lockorder

import (
	"errors"
	"fmt"
)

// ErrCyclic is returned when the dependencies form a cycle; it is detected
// before anything is locked.
var ErrCyclic = errors.New("job locking dependency graph is cyclic")

// Ref names a job by job name and release, as metadata scripts do.
type Ref struct {
	JobName string
	Release string
}

// Job is one job on one instance.
type Job struct {
	Name    string
	Release string
	// LockBefore lists the jobs that must be locked after this one.
	LockBefore []Ref
}

// Layers orders jobs into lock layers and returns each layer as indexes
// into jobs, in input order within a layer. A LockBefore entry that matches
// no job is ignored, as upstream does. Director mode, which has no manifest
// to give releases, leaves both releases empty so that names alone match.
func Layers(jobs []Job) ([][]int, error) {
	// edges[i] are the jobs that must wait for i; inDegree counts waits.
	edges := make([][]int, len(jobs))
	inDegree := make([]int, len(jobs))
	for i, job := range jobs {
		for _, ref := range job.LockBefore {
			for j, other := range jobs {
				if j != i && other.Name == ref.JobName && other.Release == ref.Release {
					edges[i] = append(edges[i], j)
					inDegree[j]++
				}
			}
		}
	}

	var layers [][]int
	done := 0
	placed := make([]bool, len(jobs))
	for done < len(jobs) {
		var layer []int
		for i := range jobs {
			if !placed[i] && inDegree[i] == 0 {
				layer = append(layer, i)
			}
		}
		if len(layer) == 0 {
			return nil, fmt.Errorf("%w: %s", ErrCyclic, describeCycle(jobs, placed))
		}
		for _, i := range layer {
			placed[i] = true
			for _, j := range edges[i] {
				inDegree[j]--
			}
		}
		done += len(layer)
		layers = append(layers, layer)
	}
	return layers, nil
}

func describeCycle(jobs []Job, placed []bool) string {
	var names []string
	for i, j := range jobs {
		if !placed[i] {
			names = append(names, j.Release+"/"+j.Name)
		}
	}
	return fmt.Sprintf("jobs %v depend on each other", names)
}
