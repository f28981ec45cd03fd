package director

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// task is a Director task: an operation clients poll until it is done.
type task struct {
	ID          int
	Description string
	Deployment  string
	User        string
	Started     time.Time

	mu     sync.Mutex
	state  string // queued, processing, done, error
	result []byte // output?type=result
	events []byte // output?type=event, newline-delimited JSON
	short  string // "result" field of the task: a summary or the error
	done   chan struct{}
}

type taskList struct {
	mu    sync.Mutex
	next  int
	tasks map[int]*task
}

func newTaskList() *taskList { return &taskList{next: 1, tasks: map[int]*task{}} }

// taskTimeout bounds one task; the agent calls are local and quick.
const taskTimeout = 5 * time.Minute

// start runs f as a task.
func (l *taskList) start(desc, deployment, user string, f func(ctx context.Context) ([]byte, error)) *task {
	l.mu.Lock()
	t := &task{ID: l.next, Description: desc, Deployment: deployment, User: user, Started: time.Now(), state: "processing", done: make(chan struct{})}
	l.tasks[t.ID] = t
	l.next++
	l.mu.Unlock()

	go func() {
		defer close(t.done)
		ctx, cancel := context.WithTimeout(context.Background(), taskTimeout)
		defer cancel()
		result, err := f(ctx)
		t.mu.Lock()
		defer t.mu.Unlock()
		t.result = result
		if err != nil {
			t.state, t.short = "error", err.Error()
			t.events = event(t.ID, "error", err.Error())
			return
		}
		t.state, t.short = "done", "/"+desc
		t.events = event(t.ID, "finished", desc)
	}()
	return t
}

func event(id int, state, msg string) []byte {
	line, _ := json.Marshal(map[string]any{"time": time.Now().Unix(), "stage": "Task", "tags": []string{}, "total": 1, "task": msg, "index": 1, "state": state, "progress": 100, "data": map[string]any{"task_id": id}})
	return append(line, '\n')
}

func (l *taskList) get(id int) (*task, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.tasks[id]
	return t, ok
}

// redirectToTask answers like the Director: 302 to /tasks/ID. It waits a
// little for quick tasks first, so clients find them done on the first
// poll instead of sleeping a polling interval.
func redirectToTask(w http.ResponseWriter, r *http.Request, t *task) {
	select {
	case <-t.done:
	case <-time.After(2 * time.Second):
	}
	http.Redirect(w, r, fmt.Sprintf("/tasks/%d", t.ID), http.StatusFound)
}

type taskResp struct {
	ID          int    `json:"id"`
	State       string `json:"state"`
	Description string `json:"description"`
	Timestamp   int64  `json:"timestamp"`
	StartedAt   int64  `json:"started_at"`
	Result      string `json:"result"`
	User        string `json:"user"`
	Deployment  string `json:"deployment"`
	ContextID   string `json:"context_id"`
}

func (t *task) resp() taskResp {
	t.mu.Lock()
	defer t.mu.Unlock()
	return taskResp{ID: t.ID, State: t.state, Description: t.Description, Timestamp: time.Now().Unix(),
		StartedAt: t.Started.Unix(), Result: t.short, User: t.User, Deployment: t.Deployment}
}

func (s *Server) taskFor(w http.ResponseWriter, r *http.Request) (*task, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	t, ok := s.tasks.get(id)
	if err != nil || !ok {
		writeError(w, http.StatusNotFound, 10001, fmt.Sprintf("Task %s not found", r.PathValue("id")))
		return nil, false
	}
	return t, true
}

func (s *Server) task(w http.ResponseWriter, r *http.Request) {
	if t, ok := s.taskFor(w, r); ok {
		writeJSON(w, http.StatusOK, t.resp())
	}
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) {
	s.tasks.mu.Lock()
	var out []taskResp
	for _, t := range s.tasks.tasks {
		if dep := r.URL.Query().Get("deployment"); dep == "" || dep == t.Deployment {
			out = append(out, t.resp())
		}
	}
	s.tasks.mu.Unlock()
	if out == nil {
		out = []taskResp{}
	}
	writeJSON(w, http.StatusOK, out)
}

// taskOutput serves result, event and debug output, honouring the
// "Range: bytes=N-" header clients use to follow event output.
func (s *Server) taskOutput(w http.ResponseWriter, r *http.Request) {
	t, ok := s.taskFor(w, r)
	if !ok {
		return
	}
	t.mu.Lock()
	var body []byte
	switch r.URL.Query().Get("type") {
	case "result":
		body = t.result
	case "event":
		body = t.events
	}
	t.mu.Unlock()

	status := http.StatusOK
	if rng := r.Header.Get("Range"); strings.HasPrefix(rng, "bytes=") {
		from, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rng, "bytes="), "-"))
		if err != nil || from >= len(body) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		body, status = body[from:], http.StatusPartialContent
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
