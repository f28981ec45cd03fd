package director

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Task states, as the Director names them.
const (
	stateQueued     = "queued"
	stateProcessing = "processing"
	stateDone       = "done"
	stateError      = "error"
	stateCancelling = "cancelling"
	stateCancelled  = "cancelled"
)

// taskTimeout bounds one task; the agent's work is local and quick.
const taskTimeout = 5 * time.Minute

// redirectWait is how long a request that starts a task waits for it
// before redirecting to it. Lab tasks finish in milliseconds, so clients
// find them done on their first poll instead of sleeping a polling
// interval (bosh-cli: 500 ms); and bosh-cli's SSH cleanup, which does not
// poll at all, returns only once the users are gone (Config.RedirectAtOnce
// turns this off).
const redirectWait = 2 * time.Second

// errorCode is the code of a failed task's error event; bosh-cli shows
// only the message.
const errorCode = 100

// taskMeta is what a task records about the request that started it.
type taskMeta struct {
	description string
	deployment  string
	user        string
	contextID   string
	// timeout bounds the task; zero: taskTimeout.
	timeout time.Duration
}

// taskFunc is a task's work. It returns the task's short result text (the
// "result" field of GET /tasks/ID), its result output (?type=result), and
// an error that fails the task; result output is kept even then.
type taskFunc func(ctx context.Context, t *task) (summary string, result []byte, err error)

// task is a Director task: an operation clients poll until it is done.
type task struct {
	id     int
	meta   taskMeta
	done   chan struct{}
	cancel context.CancelFunc // DELETE /task/ID

	mu        sync.Mutex
	state     string
	startedAt time.Time // zero while queued
	updatedAt time.Time
	summary   string
	result    []byte // ?type=result
	events    []byte // ?type=event: one JSON event per line
	debug     []byte // ?type=debug: a log, as the Director's debug output
}

type taskList struct {
	mu      sync.Mutex
	next    int
	tasks   map[int]*task
	running sync.WaitGroup
}

func newTaskList() *taskList { return &taskList{next: 1, tasks: map[int]*task{}} }

// start queues f as a new task and runs it in the background.
func (l *taskList) start(meta taskMeta, f taskFunc) *task {
	now := time.Now()
	l.mu.Lock()
	timeout := meta.timeout
	if timeout == 0 {
		timeout = taskTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t := &task{id: l.next, meta: meta, done: make(chan struct{}), cancel: cancel, state: stateQueued, updatedAt: now}
	l.tasks[t.id] = t
	l.next++
	l.running.Add(1)
	l.mu.Unlock()

	go func() {
		defer l.running.Done()
		defer close(t.done)
		defer cancel()
		t.setProcessing()
		summary, result, err := f(ctx, t)
		t.finish(summary, result, err)
	}()
	return t
}

// wait returns when no task is running any more, or when ctx is done.
func (l *taskList) wait(ctx context.Context) {
	idle := make(chan struct{})
	go func() {
		l.running.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

func (l *taskList) get(id int) (*task, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.tasks[id]
	return t, ok
}

// all returns the tasks, newest first, as the Director lists them.
func (l *taskList) all() []*task {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*task, 0, len(l.tasks))
	for _, t := range l.tasks {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *task) int { return b.id - a.id })
	return out
}

func (t *task) setProcessing() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == stateCancelling {
		return // cancelled while queued: its work sees a done context
	}
	t.state, t.startedAt, t.updatedAt = stateProcessing, time.Now(), time.Now()
	t.logLocked("INFO", "Performing task %d: %s", t.id, t.meta.description)
}

func (t *task) finish(summary string, result []byte, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.result, t.updatedAt = result, time.Now()
	if t.state == stateCancelling {
		// The Director reports no error for a cancelled task: its state
		// says it (bosh-cli: "Task N cancelled").
		t.state, t.summary = stateCancelled, "task cancelled"
		t.logLocked("INFO", "Task %d cancelled", t.id)
		return
	}
	if err != nil {
		t.state, t.summary = stateError, err.Error()
		t.logLocked("ERROR", "%s", err)
		// The Director reports a task's failure as an error event; the
		// bosh CLI prints its message ("Error: ...").
		line, _ := json.Marshal(map[string]any{
			"time":  t.updatedAt.Unix(),
			"error": map[string]any{"code": errorCode, "message": err.Error()},
		})
		t.events = append(append(t.events, line...), '\n')
		return
	}
	t.state, t.summary = stateDone, summary
	t.logLocked("INFO", "Task %d done", t.id)
}

// event adds a stage event to the task's event output, as the Director
// reports progress (bosh-cli prints "Task N | 10:00:00 | Stage: task").
func (t *task) event(stage, name string, index, total int, state string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	progress := 0
	if state == "finished" || state == "failed" {
		progress = 100
	}
	line, _ := json.Marshal(map[string]any{
		"time": time.Now().Unix(), "stage": stage, "tags": []string{}, "total": total,
		"task": name, "index": index, "state": state, "progress": progress,
	})
	t.events = append(append(t.events, line...), '\n')
}

// step runs work as one task of stage, between its started and its
// finished (or failed) events, as the bosh CLI times them.
func (t *task) step(stage, name string, index, total int, work func() error) error {
	t.event(stage, name, index, total, "started")
	if err := work(); err != nil {
		t.event(stage, name, index, total, "failed")
		return err
	}
	t.event(stage, name, index, total, "finished")
	return nil
}

// requestCancel is DELETE /task/ID: a queued or running task becomes
// cancelling, and its work's context is cancelled.
func (t *task) requestCancel() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != stateQueued && t.state != stateProcessing {
		return fmt.Errorf("Cannot cancel task %d: invalid state (%s)", t.id, t.state)
	}
	t.state, t.updatedAt = stateCancelling, time.Now()
	t.logLocked("INFO", "Cancelling task %d", t.id)
	t.cancel()
	return nil
}

// cancelTask is DELETE /task/ID (singular, as bosh-cli sends it).
func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request) {
	t, ok := s.taskFor(w, r)
	if !ok {
		return
	}
	if err := t.requestCancel(); err != nil {
		writeError(w, http.StatusBadRequest, codeTaskCannotCancel, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// logf adds a line to the task's debug output.
func (t *task) logf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.logLocked("INFO", format, args...)
}

func (t *task) logLocked(level, format string, args ...any) {
	line := fmt.Sprintf("%c, [%s #%d] %5s -- DirectorJobRunner: %s\n",
		level[0], time.Now().UTC().Format("2006-01-02T15:04:05.000000"), t.id, level, fmt.Sprintf(format, args...))
	t.debug = append(t.debug, line...)
}

// taskMeta describes a task started by r.
func (s *Server) taskMeta(r *http.Request, description, deployment string) taskMeta {
	user, _ := s.authenticate(r)
	return taskMeta{description: description, deployment: deployment, user: user, contextID: r.Header.Get("X-Bosh-Context-Id")}
}

// redirectToTask answers a request that started t like the Director:
// 302 to /tasks/ID, which clients follow with a GET.
func (s *Server) redirectToTask(w http.ResponseWriter, r *http.Request, t *task) {
	if !s.cfg.RedirectAtOnce {
		select {
		case <-t.done:
		case <-time.After(redirectWait):
		case <-r.Context().Done():
		}
	}
	http.Redirect(w, r, fmt.Sprintf("/tasks/%d", t.id), http.StatusFound)
}

// taskResp is GET /tasks/ID (bosh-cli director/tasks.go TaskResp).
type taskResp struct {
	ID          int    `json:"id"`
	State       string `json:"state"`
	Description string `json:"description"`
	Timestamp   int64  `json:"timestamp"`
	StartedAt   *int64 `json:"started_at"`
	Result      string `json:"result"`
	User        string `json:"user"`
	Deployment  string `json:"deployment"`
	ContextID   string `json:"context_id"`
}

func (t *task) resp() taskResp {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := taskResp{
		ID: t.id, State: t.state, Description: t.meta.description, Timestamp: t.updatedAt.Unix(),
		Result: t.summary, User: t.meta.user, Deployment: t.meta.deployment, ContextID: t.meta.contextID,
	}
	if !t.startedAt.IsZero() {
		r.StartedAt = ptr(t.startedAt.Unix())
	}
	return r
}

func (s *Server) taskFor(w http.ResponseWriter, r *http.Request) (*task, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	t, ok := s.tasks.get(id)
	if err != nil || !ok {
		writeError(w, http.StatusNotFound, codeTaskNotFound, fmt.Sprintf("Task %s not found", r.PathValue("id")))
		return nil, false
	}
	return t, true
}

// task is GET /tasks/ID.
func (s *Server) task(w http.ResponseWriter, r *http.Request) {
	if t, ok := s.taskFor(w, r); ok {
		writeJSON(w, http.StatusOK, t.resp())
	}
}

// listTasks is GET /tasks with the filters the bosh CLI uses: deployment,
// state (comma-separated), context_id and limit.
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var states []string
	if q.Get("state") != "" {
		states = strings.Split(q.Get("state"), ",")
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = -1
	}
	out := []taskResp{}
	for _, t := range s.tasks.all() {
		resp := t.resp()
		switch {
		case q.Get("deployment") != "" && resp.Deployment != q.Get("deployment"):
		case q.Get("context_id") != "" && resp.ContextID != q.Get("context_id"):
		case states != nil && !slices.Contains(states, resp.State):
		case limit >= 0 && len(out) >= limit:
		default:
			out = append(out, resp)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// taskOutput is GET /tasks/ID/output?type=result|event|debug. Clients
// follow event output with "Range: bytes=N-" and treat 416 as "nothing
// new" (bosh-cli task_client_request.go reportOutputChunk).
func (s *Server) taskOutput(w http.ResponseWriter, r *http.Request) {
	t, ok := s.taskFor(w, r)
	if !ok {
		return
	}
	kind := r.URL.Query().Get("type")
	if !slices.Contains([]string{"result", "event", "debug", ""}, kind) {
		writeError(w, http.StatusBadRequest, codeValidation, fmt.Sprintf("Unknown task output type '%s'", kind))
		return
	}
	t.mu.Lock()
	var body []byte
	switch kind {
	case "result":
		body = t.result
	case "event":
		body = t.events
	default:
		body = t.debug
	}
	// Outputs only grow by append, so the slice stays valid unlocked.
	t.mu.Unlock()

	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Accept-Ranges", "bytes")
	from, to, ranged := parseRange(r.Header.Get("Range"), len(body))
	if !ranged {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return
	}
	if from >= len(body) {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(body)))
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return
	}
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to-1, len(body)))
	w.WriteHeader(http.StatusPartialContent)
	_, _ = w.Write(body[from:to])
}

// parseRange reads "bytes=N-" or "bytes=N-M" into the half-open [from,
// to) of a body of size n. Any other Range header is ignored, as HTTP
// allows, and the whole body served.
func parseRange(header string, n int) (from, to int, ok bool) {
	spec, found := strings.CutPrefix(header, "bytes=")
	if !found {
		return 0, 0, false
	}
	first, last, found := strings.Cut(spec, "-")
	from, err := strconv.Atoi(first)
	if !found || err != nil || from < 0 {
		return 0, 0, false
	}
	to = n
	if last != "" {
		end, err := strconv.Atoi(last)
		if err != nil || end < from {
			return 0, 0, false
		}
		to = min(end+1, n)
	}
	return from, to, true
}
