package orchestrator

import (
	"errors"
	"sync"
)

// forEach runs f for every item with at most limit running at once and
// joins the errors. Every item runs even if some fail: a failed lock on one
// job must not keep the others from being unlocked.
func forEach[T any](items []T, limit int, f func(T) error) error {
	if limit < 1 {
		limit = 1
	}
	sem := make(chan struct{}, limit)
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(item)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
