package artifact

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Retention says which good backups of a deployment to keep: the newest
// KeepLast, and those younger than MaxAge (restic's rule: a backup any
// of the two keeps is kept). Zero values keep everything; the newest good
// backup is always kept.
type Retention struct {
	KeepLast int
	MaxAge   time.Duration
	// InProgressGrace is how long a backup without a completion mark
	// may still be running (see plan); 0 is DefaultInProgressGrace.
	InProgressGrace time.Duration
}

// Pruned is what Prune did: the backups it removed, and the ones it kept
// because they cannot be read.
type Pruned struct {
	Removed []string
	Kept    []error
}

// Prune applies r to the backups of deployment at dest. Failed backups
// never count toward KeepLast, and are removed once a newer good backup
// exists; so are backups in progress, once older than r's grace. A
// backup that cannot be read is never removed: it may be good.
func Prune(ctx context.Context, dest Destination, deployment string, r Retention, now time.Time) (Pruned, error) {
	var p Pruned
	all, err := List(ctx, dest, deployment)
	if err != nil {
		return p, err
	}
	drop, kept := r.plan(all, now)
	p.Kept = kept
	var errs []error
	for _, b := range drop {
		if err := dest.Delete(ctx, b.Name); err != nil {
			errs = append(errs, fmt.Errorf("removing %s from %s: %w", b.Name, dest, err))
			continue
		}
		p.Removed = append(p.Removed, b.Name)
	}
	return p, errors.Join(errs...)
}

// plan picks what to remove from all (one deployment's, newest first).
func (r Retention) plan(all []Stored, now time.Time) (drop []Stored, kept []error) {
	goodSeen := 0
	for _, b := range all {
		switch b.State {
		case Good:
			goodSeen++
			if goodSeen > 1 && !r.keeps(goodSeen, now.Sub(b.Time)) {
				drop = append(drop, b)
			}
		case Failed:
			if goodSeen > 0 { // a newer good backup exists
				drop = append(drop, b)
			}
		case InProgress:
			// It may still be running (another run's, draining while this
			// one finished): removing it would pull its files from under
			// it. Past the grace, it was interrupted.
			if goodSeen > 0 && now.Sub(b.Time) > r.grace() {
				drop = append(drop, b)
			}
		default:
			kept = append(kept, fmt.Errorf("kept %s: it cannot be read (%w); remove it by hand if it is not a good backup", b.Name, b.Why))
		}
	}
	return drop, kept
}

// DefaultInProgressGrace is how long a backup without a completion mark
// is taken to be still running: longer than any backup should take.
const DefaultInProgressGrace = 24 * time.Hour

func (r Retention) grace() time.Duration {
	if r.InProgressGrace > 0 {
		return r.InProgressGrace
	}
	return DefaultInProgressGrace
}

// keeps says whether the nth newest good backup, of the given age, stays.
func (r Retention) keeps(nth int, age time.Duration) bool {
	if r.KeepLast == 0 && r.MaxAge == 0 {
		return true
	}
	return (r.KeepLast > 0 && nth <= r.KeepLast) || (r.MaxAge > 0 && age <= r.MaxAge)
}
