package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/bbr-release/bbr/src/lab/labdir"
	"github.com/bbr-release/bbr/src/lab/sample"
)

// PlanAll lays out every deployment of `bbr-lab up`, the d-th on the
// command line at <subnet>.<d>. With no directories it plans the embedded
// sample, which it extracts into the lab directory first; "sample" names
// it too when no such directory exists.
func PlanAll(dirs []string, subnet, labDir, labBin string) ([]Planned, error) {
	dirs, err := extractSample(dirs, labDir)
	if err != nil {
		return nil, err
	}
	var plans []Planned
	seen := map[string]bool{}
	for i, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", d, err)
		}
		plan, err := Plan(abs, subnet, i+1, labDir, labBin)
		if err != nil {
			return nil, err
		}
		if seen[plan.Name] {
			return nil, fmt.Errorf("two deployments are named %s", plan.Name)
		}
		seen[plan.Name] = true
		plans = append(plans, plan)
	}
	return plans, nil
}

// extractSample replaces the name of the embedded sample among dirs with
// the directory it is extracted to.
func extractSample(dirs []string, labDir string) ([]string, error) {
	dirs = slices.Clone(dirs)
	if len(dirs) == 0 {
		dirs = []string{sample.Default}
	}
	for i, d := range dirs {
		if _, err := os.Stat(d); err == nil || d != sample.Default {
			continue
		}
		dst := filepath.Join(labDir, labdir.Deployments, sample.Default)
		if err := sample.Extract(sample.Default, dst); err != nil {
			return nil, err
		}
		dirs[i] = dst
	}
	return dirs, nil
}
