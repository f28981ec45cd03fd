package director

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	boshdir "github.com/cloudfoundry/bosh-cli/v7/director"
	"github.com/cloudfoundry/bosh-utils/httpclient"

	"github.com/bbr-release/bbr/src/orchestrator"
)

// CleanupWait bounds how long CleanUpSSH waits for the Director's cleanup
// task. An idle Director finishes it in well under a second; a Director
// busy with other tasks may queue it for longer, and the run should not
// wait behind that queue (the task still runs).
var CleanupWait = 15 * time.Second

// CleanUpSSH removes the user from one instance (every instance of the
// group when id is "") and waits for the
// Director's task to say it did.
//
// bosh-cli posts this request without waiting ("we don't want to wait for
// cleanup to finish", director/ssh.go) and drops the task the Director
// redirects to, as upstream bbr does, so a failed cleanup went unseen and
// left a sudoer on the instance. bbr posts it itself, with bosh-cli's
// authentication and TLS settings, and follows that task.
func (c *Client) CleanUpSSH(ctx context.Context, deployment, group, id, user string) error {
	err := c.cleanUpSSH(ctx, deployment, group, id, user)
	if err != nil {
		return fmt.Errorf("cleaning up ssh user on %s/%s: %w", group, id, err)
	}
	return nil
}

func (c *Client) cleanUpSSH(ctx context.Context, deployment, group, id, user string) error {
	target := map[string]any{"job": group, "indexes": []string{}, "ids": []string{}} // the whole group
	if id != "" {
		target["indexes"], target["ids"] = []string{id}, []string{id}
	}
	body, err := json.Marshal(map[string]any{
		"command":         "cleanup",
		"deployment_name": deployment,
		"target":          target,
		"params":          map[string]string{"user_regex": "^" + user},
	})
	if err != nil {
		return err
	}
	task, err := c.raw.postTask(ctx, "/deployments/"+url.PathEscape(deployment)+"/ssh", body)
	if err != nil {
		return withContext(ctx, simplify(err))
	}
	return c.waitForTask(ctx, task)
}

// waitForTask polls task until it ends or CleanupWait passes. A failed
// look-up leaves the outcome unknown, like a task still running: the
// cleanup was accepted and runs whether bbr watches it or not. Only a
// cancelled run (a second signal) stops the wait as an error.
func (c *Client) waitForTask(ctx context.Context, id int) error {
	deadline := time.Now().Add(CleanupWait)
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		t, err := call(ctx, func() (boshdir.Task, error) { return c.dir.FindTask(id) })
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			return fmt.Errorf("%w: looking at task %d failed: %w", orchestrator.ErrCleanupUnconfirmed, id, err)
		}
		if t.IsError() {
			return fmt.Errorf("task %d ended in state %s: %s (see `bosh task %d`)", id, t.State(), t.Result(), id)
		}
		if t.State() == "done" {
			return nil
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("%w: task %d still running after %s (see `bosh task %d`)", orchestrator.ErrCleanupUnconfirmed, id, CleanupWait, id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// rawClient makes the one Director request bosh-cli cannot follow, with
// the client's TLS settings and credentials.
type rawClient struct {
	base string
	http *http.Client
	auth boshdir.AuthRequestAdjustment
}

func newRawClient(cfg boshdir.FactoryConfig) (*rawClient, error) {
	pool, err := cfg.CACertPool()
	if err != nil {
		return nil, err
	}
	hc := httpclient.CreateDefaultClient(pool)
	// The answer is a redirect to the task: keep it, do not follow it.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &rawClient{
		base: "https://" + net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		http: hc,
		auth: boshdir.NewAuthRequestAdjustment(cfg.TokenFunc, cfg.Client, cfg.ClientSecret),
	}, nil
}

var taskPath = regexp.MustCompile(`^/tasks/(\d+)$`)

// postTask posts a JSON body and returns the id of the task the Director
// redirects to. A refused token is renewed once, as bosh-cli does.
func (r *rawClient) postTask(ctx context.Context, path string, body []byte) (int, error) {
	for retried := false; ; retried = true {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if err := r.auth.Adjust(req, retried); err != nil {
			return 0, err
		}
		resp, err := r.http.Do(req)
		if err != nil && ctx.Err() != nil {
			return 0, err // the run's cancellation, not the Director's health
		}
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && !retried {
			continue
		}
		if resp.StatusCode != http.StatusFound {
			return 0, fmt.Errorf("Director responded with non-successful status code '%d' response '%s'", resp.StatusCode, bytes.TrimSpace(msg)) //nolint:staticcheck // the bosh CLI's words
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			return 0, fmt.Errorf("the Director redirected to %q, not to a task", resp.Header.Get("Location"))
		}
		m := taskPath.FindStringSubmatch(loc.Path)
		if m == nil {
			return 0, fmt.Errorf("the Director redirected to %q, not to a task", loc.Path)
		}
		return strconv.Atoi(m[1])
	}
}
