package director

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// requestLog writes one line per request: listener, method, path with
// query, status and duration. Headers and bodies (credentials, tokens,
// public keys) are never logged.
type requestLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *requestLog) wrap(listener string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		l.mu.Lock()
		defer l.mu.Unlock()
		fmt.Fprintf(l.w, "%s %s %s %s %d %s\n", start.UTC().Format(time.RFC3339), listener,
			r.Method, r.URL.RequestURI(), rec.status, time.Since(start).Round(time.Microsecond))
	})
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
