// Package director is the lab's BOSH Director API: the endpoints bbr and
// the bosh CLI use, with the JSON shapes a real Director sends, backed by
// the lab's instances. Long operations are Director tasks: the request is
// answered with a redirect to /tasks/ID, which clients follow and poll.
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
	"slices"
	"sync"
	"time"

	"github.com/bbr-release/bbr/src/lab/model"
	"github.com/bbr-release/bbr/src/lab/releasestore"
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
	// Errands runs errands on instances; nil: the Director has none.
	Errands ErrandRunner
	// Releases keeps uploaded releases and compiles their packages, and
	// Deployer starts deployments' instances; nil: no upload-release or
	// deploy.
	Releases *releasestore.Store
	Deployer Deployer
	// Save is told of the lab after each deploy or delete (lab.json).
	Save func(model.Lab) error
	// RedirectAtOnce answers a request that starts a task with its
	// redirect at once, as the real Director does, instead of waiting up
	// to redirectWait for the task: for specs that watch a client poll.
	RedirectAtOnce bool
}

// Auth modes of model.Director.Auth; empty means basic.
const (
	authBasic = "basic"
	authUAA   = "uaa"
)

// shutdownGrace bounds how long ListenAndServe waits, once ctx is done, for
// requests in flight and running tasks (an agent half way through useradd).
const shutdownGrace = 10 * time.Second

// Server is the Director API (and, in uaa mode, a UAA token endpoint).
type Server struct {
	cfg Config
	// mu guards deployments and manifests, which deploys change.
	mu          sync.RWMutex
	deployments []model.Deployment
	manifests   map[string]manifestSummary
	saving      sync.Mutex // one lab.json save at a time
	// deploying serialises deploys and deletes: they choose addresses
	// from, and replace, what the others start.
	deploying sync.Mutex
	// locked are the deployments a deploy, delete or errand task holds,
	// as the Director's deployment locks (guarded by mu).
	locked map[string]bool
	tasks  *taskList
	tokens *tokenIssuer
	blobs  *blobstore
	log    *requestLog
	// started stands in for when the instances' "VMs" were created.
	started time.Time
}

// New builds the server. The lab is read once: the server does not follow
// later changes to lab.json, but keeps its own deploys (Config.Save).
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	manifests := make(map[string]manifestSummary, len(cfg.Lab.Deployments))
	for _, d := range cfg.Lab.Deployments {
		manifests[d.Name] = summarize(d.Manifest)
	}
	return &Server{
		cfg:         cfg,
		deployments: slices.Clone(cfg.Lab.Deployments),
		manifests:   manifests,
		locked:      map[string]bool{},
		tasks:       newTaskList(),
		blobs:       &blobstore{blobs: map[string][]byte{}},
		tokens:      newTokenIssuer("https://" + cfg.Lab.Director.UAAAddress + "/oauth/token"),
		log:         &requestLog{w: cfg.Log},
		started:     time.Now(),
	}
}

// Handler is the Director API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", s.info)
	mux.Handle("GET /deployments", s.authed(s.listDeployments))
	mux.Handle("GET /deployments/{name}", s.authed(s.manifest))
	mux.Handle("GET /deployments/{name}/vms", s.authed(s.vms))
	mux.Handle("GET /deployments/{name}/instances", s.authed(s.instances))
	mux.Handle("POST /deployments/{name}/ssh", s.authed(s.ssh))
	mux.Handle("GET /tasks", s.authed(s.listTasks))
	mux.Handle("GET /tasks/{id}", s.authed(s.task))
	mux.Handle("GET /tasks/{id}/output", s.authed(s.taskOutput))
	mux.Handle("DELETE /task/{id}", s.authed(s.cancelTask))
	mux.Handle("GET /deployments/{name}/errands", s.authed(s.listErrands))
	mux.Handle("POST /deployments/{name}/errands/{errand}/runs", s.authed(s.runErrand))
	mux.Handle("GET /resources/{id}", s.authed(s.resource))
	mux.Handle("GET /releases", s.authed(s.listReleases))
	mux.Handle("POST /releases", s.authed(s.uploadRelease))
	mux.Handle("POST /packages/matches", s.authed(s.matchPackages))
	mux.Handle("GET /configs", s.authed(s.listConfigs))
	mux.Handle("POST /deployments/{name}/diff", s.authed(s.diff))
	mux.Handle("POST /deployments", s.authed(s.deploy))
	mux.Handle("DELETE /deployments/{name}", s.authed(s.deleteDeployment))
	return s.log.wrap("director", mux)
}

// ListenAndServe serves the Director on Lab.Director.Address and, in uaa
// mode, the UAA on Lab.Director.UAAAddress, until ctx is done (then it
// returns nil) or a listener fails.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if s.cfg.TLS == nil {
		return errors.New("serving the Director API: no TLS configuration")
	}
	d := s.cfg.Lab.Director
	switch {
	case d.Address == "":
		return errors.New("serving the Director API: the lab names no Director address")
	case d.Auth != "" && d.Auth != authBasic && d.Auth != authUAA:
		return fmt.Errorf("serving the Director API: unknown auth %q (basic or uaa)", d.Auth)
	case d.Auth == authUAA && d.UAAAddress == "":
		return errors.New("serving the Director API: uaa auth but the lab names no UAA address")
	}
	type listener struct {
		addr    string
		handler http.Handler
	}
	listeners := []listener{{d.Address, s.Handler()}}
	if d.Auth == authUAA {
		listeners = append(listeners, listener{d.UAAAddress, s.UAAHandler()})
	}

	var servers []*http.Server
	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			closeAll(servers)
			return fmt.Errorf("listening on %s: %w", l.addr, err)
		}
		srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(tls.NewListener(ln, s.cfg.TLS)); !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serving %s: %w", ln.Addr(), err)
			}
		}()
	}

	select {
	case err := <-errs:
		closeAll(servers)
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			srv.Close()
		}
	}
	s.tasks.wait(shutdownCtx)
	return nil
}

func closeAll(servers []*http.Server) {
	for _, srv := range servers {
		srv.Close()
	}
}

// errorResp is the Director's JSON error body.
type errorResp struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
}

// Director error codes clients may recognise.
const (
	codeDeploymentNotFound = 70000
	codeTaskNotFound       = 10001
	codeValidation         = 40000
	codeTaskCannotCancel   = 10002
	codeResourceNotFound   = 100
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// Manifests hold '<', '>' and '&' in scripts; the Director sends them as is.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, errorResp{Code: code, Description: msg})
}

// findDeployment answers 404 as the Director does when {name} is unknown.
func (s *Server) findDeployment(w http.ResponseWriter, r *http.Request) (model.Deployment, bool) {
	name := r.PathValue("name")
	d, ok := s.deployment(name)
	if !ok {
		writeError(w, http.StatusNotFound, codeDeploymentNotFound, fmt.Sprintf("Deployment '%s' doesn't exist", name))
	}
	return d, ok
}

// deployment is the named deployment, as last deployed.
func (s *Server) deployment(name string) (model.Deployment, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := slices.IndexFunc(s.deployments, func(d model.Deployment) bool { return d.Name == name })
	if i < 0 {
		return model.Deployment{}, false
	}
	return s.deployments[i], true
}

// Deployments are the deployments, in the order they were first deployed.
func (s *Server) Deployments() []model.Deployment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.deployments)
}

// summary is what the named deployment's manifest says.
func (s *Server) summary(name string) manifestSummary {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.manifests[name]
}

// setDeployment records d (deployed or updated), or removes the
// deployment called name when d is nil, and saves the lab.
func (s *Server) setDeployment(name string, d *model.Deployment) error {
	// Saved in the order changed: the newest lab.json is the newest state.
	s.saving.Lock()
	defer s.saving.Unlock()
	s.mu.Lock()
	i := slices.IndexFunc(s.deployments, func(x model.Deployment) bool { return x.Name == name })
	switch {
	case d == nil && i >= 0:
		s.deployments = slices.Delete(s.deployments, i, i+1)
		delete(s.manifests, name)
	case d != nil && i >= 0:
		s.deployments[i] = *d
		s.manifests[name] = summarize(d.Manifest)
	case d != nil:
		s.deployments = append(s.deployments, *d)
		s.manifests[name] = summarize(d.Manifest)
	}
	lab := s.cfg.Lab
	lab.Deployments = slices.Clone(s.deployments)
	s.mu.Unlock()
	if s.cfg.Save == nil {
		return nil
	}
	return s.cfg.Save(lab)
}

// lockDeployment takes the deployment's lock for a task, or fails as the
// Director does when another task holds it.
func (s *Server) lockDeployment(name string) (unlock func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked[name] {
		return nil, fmt.Errorf("Failed to acquire lock for lock:deployment:%s: another task holds it", name)
	}
	s.locked[name] = true
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.locked, name)
	}, nil
}
