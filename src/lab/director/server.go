// Package director is the lab's BOSH Director API: the endpoints bbr and
// the bosh CLI use, with the JSON shapes a real Director sends, backed by
// the lab's instances. Long operations are Director tasks: the request is
// answered with a redirect to /tasks/ID, which clients poll.
package director

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/bbr-release/bbr/src/lab/model"
)

// Agent does on an instance what a BOSH agent does for `bosh ssh`.
type Agent interface {
	// SetUpSSH creates user with public key and passwordless sudo on the instance.
	SetUpSSH(ctx context.Context, deployment string, inst model.Instance, user, publicKey string) error
	// CleanUpSSH removes every user matching userRegex that the lab made on the instance.
	CleanUpSSH(ctx context.Context, deployment string, inst model.Instance, userRegex string) error
}

// Config is what the server serves and how.
type Config struct {
	Lab   model.Lab
	Agent Agent
	// Log receives one line per request; never credentials.
	Log io.Writer
	// TLS serves both the Director and the UAA listeners.
	TLS *tls.Config
}

// Server is the Director API (and, in uaa mode, a UAA token endpoint).
type Server struct {
	cfg    Config
	tasks  *taskList
	tokens *tokenStore
	logMu  sync.Mutex
}

// New builds the server.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	return &Server{cfg: cfg, tasks: newTaskList(), tokens: newTokenStore()}
}

// Handler is the Director API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", s.info)
	mux.Handle("GET /deployments", s.authed(s.listDeployments))
	mux.Handle("GET /deployments/{name}", s.authed(s.manifest))
	mux.Handle("GET /deployments/{name}/vms", s.authed(s.vms))
	mux.Handle("GET /deployments/{name}/instances", s.authed(s.vms))
	mux.Handle("POST /deployments/{name}/ssh", s.authed(s.ssh))
	mux.Handle("GET /tasks", s.authed(s.listTasks))
	mux.Handle("GET /tasks/{id}", s.authed(s.task))
	mux.Handle("GET /tasks/{id}/output", s.authed(s.taskOutput))
	return s.logged(mux)
}

// ListenAndServe serves the Director (and UAA in uaa mode) until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context) error {
	servers := map[string]http.Handler{s.cfg.Lab.Director.Address: s.Handler()}
	if s.cfg.Lab.Director.Auth == "uaa" {
		servers[s.cfg.Lab.Director.UAAAddress] = s.UAAHandler()
	}
	errs := make(chan error, len(servers))
	var running []*http.Server
	for addr, h := range servers {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, srv := range running {
				srv.Close()
			}
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		running = append(running, srv)
		go func() { errs <- srv.Serve(tls.NewListener(ln, s.cfg.TLS)) }()
	}
	select {
	case <-ctx.Done():
		for _, srv := range running {
			srv.Close()
		}
		return nil
	case err := <-errs:
		for _, srv := range running {
			srv.Close()
		}
		return err
	}
}

// errorResp is the Director's error body.
type errorResp struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, errorResp{Code: code, Description: msg})
}

func (s *Server) findDeployment(w http.ResponseWriter, r *http.Request) (model.Deployment, bool) {
	name := r.PathValue("name")
	d, ok := s.cfg.Lab.Find(name)
	if !ok {
		writeError(w, http.StatusNotFound, 70000, fmt.Sprintf("Deployment '%s' doesn't exist", name))
	}
	return d, ok
}

// logged writes one line per request: method, path, status, duration.
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		s.logMu.Lock()
		defer s.logMu.Unlock()
		fmt.Fprintf(s.cfg.Log, "%s %s %s %d %s\n", start.UTC().Format(time.RFC3339), r.Method, r.URL.RequestURI(), rec.status, time.Since(start).Round(time.Millisecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

var errUnauthorized = errors.New("unauthorized")
