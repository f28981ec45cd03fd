package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/bbr-release/bbr/src/lab/instance"
	"github.com/bbr-release/bbr/src/lab/model"
)

// Start starts every instance of every deployment at once. If any fails,
// it stops those that started, so a failed up leaves nothing running.
func Start(ctx context.Context, plans []Planned, progress io.Writer) ([]model.Deployment, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	results := make([][]model.Instance, len(plans))
	for d, plan := range plans {
		results[d] = make([]model.Instance, len(plan.Specs))
		for i, spec := range plan.Specs {
			spec.Log = progress
			wg.Add(1)
			go func() {
				defer wg.Done()
				inst, err := instance.Start(ctx, spec)
				mu.Lock()
				defer mu.Unlock()
				results[d][i] = inst
				if err != nil {
					errs = append(errs, err)
				}
			}()
		}
	}
	wg.Wait()
	deployments := make([]model.Deployment, len(plans))
	for d, plan := range plans {
		deployments[d] = plan.Deployment
		deployments[d].Instances = results[d]
	}
	if len(errs) > 0 {
		StopAll(model.Lab{Deployments: deployments}, progress)
		return nil, errors.Join(errs...)
	}
	return deployments, nil
}

// StopAll stops every started instance of lab, in parallel, and reports
// what it could not stop. Each stop gets a fresh, bounded context: it
// runs when up was interrupted, too.
func StopAll(lab model.Lab, progress io.Writer) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, d := range lab.Deployments {
		for _, inst := range d.Instances {
			if inst.MountNS == "" {
				continue // never started
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 2*instance.StopTimeout)
				defer cancel()
				if err := instance.Stop(ctx, inst, progress); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}
