package director

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Fault injection, for the lab suite's fault tests only. A file
// <lab dir>/faults/ssh-<command> (ssh-setup or ssh-cleanup), read on every
// request, makes POST /deployments/NAME/ssh with that command misbehave:
//
//	500         the request is answered 500 Internal Server Error
//	task-error  the task is started and fails with an error
//
// With no such file (the normal case) nothing changes.
const faultsDirName = "faults"

// sshFault returns the fault configured for an ssh command, or "".
func (s *Server) sshFault(command string) string {
	if s.cfg.Lab.Dir == "" {
		return ""
	}
	raw, err := os.ReadFile(filepath.Join(s.cfg.Lab.Dir, faultsDirName, "ssh-"+filepath.Base(command)))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}

// injectSSHFault answers the request with the configured fault, if any,
// and reports whether it did.
func (s *Server) injectSSHFault(w http.ResponseWriter, r *http.Request, deployment string, req sshReq) bool {
	switch s.sshFault(req.Command) {
	case "500":
		writeError(w, http.StatusInternalServerError, 100, "injected fault: internal error on ssh "+req.Command)
		return true
	case "task-error":
		t := s.tasks.start(s.taskMeta(r, "ssh: "+req.Command+":"+targetString(req.Target), deployment), func(context.Context, *task) (string, []byte, error) {
			return "", nil, errors.New(fmt.Sprint("injected fault: ssh ", req.Command, " task failed"))
		})
		s.redirectToTask(w, r, t)
		return true
	}
	return false
}
