package director

import "time"

// SetRedirectWait changes how long a task-starting request waits for its
// task, and returns a function that restores it.
func SetRedirectWait(d time.Duration) (restore func()) {
	old := redirectWait
	redirectWait = d
	return func() { redirectWait = old }
}
