package sample

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// APIConfig configures the sample API of the "api" job.
type APIConfig struct {
	// Listen is host:port, e.g. $INSTANCE_IP:8080.
	Listen string
	// MaintenanceFile puts the API in maintenance while it exists; the
	// job's bbr lock scripts create and remove it.
	MaintenanceFile string
	// Log receives a timestamped line for every state change the API
	// observes, so that tests can check when it was locked.
	Log io.Writer
	// PidFile, if set, gets the API's pid while it runs.
	PidFile string
	// Poll is how often the flag file is checked between requests.
	Poll time.Duration
}

// ServeAPI runs the sample API until ctx is done: GET / answers 200 "ok",
// or 503 "down for maintenance" while the maintenance file exists.
func ServeAPI(ctx context.Context, cfg APIConfig) error {
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	if cfg.PidFile != "" {
		if err := os.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			ln.Close()
			return fmt.Errorf("writing pid file: %w", err)
		}
		defer os.Remove(cfg.PidFile)
	}
	st := &apiState{file: cfg.MaintenanceFile, log: cfg.Log}
	st.observe("start")
	srv := &http.Server{Handler: st, ReadHeaderTimeout: 5 * time.Second}

	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(cfg.Poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(shutdown)
				return
			case <-t.C:
				st.observe("poll")
			}
		}
	}()
	fmt.Fprintf(cfg.Log, "%s listening on %s\n", stamp(), cfg.Listen)
	err = srv.Serve(ln)
	<-done
	fmt.Fprintf(cfg.Log, "%s stopped\n", stamp())
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// apiState tracks the maintenance flag and logs each change once, whether
// the poller or a request saw it first.
type apiState struct {
	file string
	log  io.Writer

	mu          sync.Mutex
	known       bool
	maintenance bool
}

func (s *apiState) observe(by string) bool {
	_, err := os.Stat(s.file)
	now := err == nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known || now != s.maintenance {
		state := "serving"
		if now {
			state = "maintenance"
		}
		fmt.Fprintf(s.log, "%s state %s (seen by %s)\n", stamp(), state, by)
		s.known, s.maintenance = true, now
	}
	return now
}

func (s *apiState) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if s.observe("request") {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func stamp() string { return time.Now().UTC().Format(time.RFC3339Nano) }
