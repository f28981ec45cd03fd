package orchestrator

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/bbr-release/bbr/src/instance"
)

// Leftovers follows what the runs of one bbr process have changed on the
// platform and not yet undone, so that a process told to abort at once
// (a second SIGINT) can say exactly what it leaves behind.
type Leftovers struct {
	mu          sync.Mutex
	deployments []*Deployment
}

// watch adds a deployment this run is setting up.
func (l *Leftovers) watch(d *Deployment) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deployments = append(l.deployments, d)
}

// forget drops a deployment whose failed set-up has cleaned up after
// itself: its error says what is left.
func (l *Leftovers) forget(d *Deployment) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deployments = slices.DeleteFunc(l.deployments, func(w *Deployment) bool { return w == d })
}

// Report lists what may be left: jobs whose lock script started and whose
// unlock has not succeeded, staging directories this run created, SSH
// users not yet removed. It is empty when nothing is left.
func (l *Leftovers) Report() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, d := range l.deployments {
		if !d.discovered.Load() {
			// Stopped while setting up: nothing is locked or staged yet,
			// and which instances got the user is not known. A run with
			// the operator's own user (director mode) made none.
			if d.sshUser == "" {
				continue
			}
			fmt.Fprintf(&b, "Deployment %s:\n  SSH user %s may be left on its instances (stopped while connecting)\n", d.Name, d.sshUser)
			continue
		}
		var locked, staged, users []string
		for _, inst := range append(append([]*Instance{}, d.Instances...), d.skipped...) {
			for _, j := range inst.Jobs {
				if j.locked.Load() {
					locked = append(locked, j.Name+" on "+inst.Name())
				}
			}
			if inst.stagingCreated.Load() && !inst.cleaned.Load() {
				staged = append(staged, inst.Name())
			}
			if d.sshUser != "" && !inst.cleaned.Load() {
				users = append(users, inst.Name())
			}
		}
		if len(locked)+len(staged)+len(users) == 0 {
			continue
		}
		fmt.Fprintf(&b, "Deployment %s:\n", d.Name)
		list := func(what string, items []string) {
			if len(items) > 0 {
				fmt.Fprintf(&b, "  %s: %s\n", what, strings.Join(items, ", "))
			}
		}
		list("may still be locked", locked)
		list(instance.DefaultStagingRoot+" left on", staged)
		list("SSH user "+d.sshUser+" left on", users)
	}
	return b.String()
}
