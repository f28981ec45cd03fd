package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Webhook posts a message about a deployment's backup or restore to a
// Slack-compatible incoming webhook: on failure, and on success too when
// OnSuccess. The URL is a secret (it is the credential): it is never
// printed, only its host.
type Webhook struct {
	URL       string
	OnSuccess bool
	// Timeout bounds each attempt; Attempts bounds the tries (with a
	// doubling pause from Backoff between them).
	Timeout  time.Duration
	Attempts int
	Backoff  time.Duration
	Client   *http.Client
}

// Webhook defaults: at most 3 × 10 s plus 3 s of pauses, so a dead
// endpoint delays the next deployment by well under a minute. bbr calls
// it only once a deployment is unlocked.
const (
	DefaultWebhookTimeout  = 10 * time.Second
	DefaultWebhookAttempts = 3
)

// CheckWebhookURL refuses a URL that is not http(s), without printing it.
func CheckWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("the webhook URL must be an http(s) URL (it is not printed: it is a secret)")
	}
	return nil
}

// Plaintext says whether posts cross the network unencrypted, with the
// URL's secret in them.
func (w Webhook) Plaintext() bool {
	u, err := url.Parse(w.URL)
	return err == nil && u.Scheme == "http" && u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1" && u.Hostname() != "::1"
}

// message is the body: Slack reads "text"; the rest is for other tools.
type message struct {
	Text       string     `json:"text"`
	Deployment Deployment `json:"bbr"`
}

// Notify posts d when it should be told, retrying a failed or refused
// post. Its error names only the endpoint's host.
func (w Webhook) Notify(ctx context.Context, d Deployment) error {
	if w.URL == "" || (d.OK && !w.OnSuccess) {
		return nil
	}
	u, err := url.Parse(w.URL)
	if err != nil {
		return CheckWebhookURL(w.URL)
	}
	d.Files = nil // the summary, not the inventory
	body, err := json.Marshal(message{Text: text(d), Deployment: d})
	if err != nil {
		return err
	}
	attempts, timeout, pause := max(w.Attempts, 1), w.Timeout, w.Backoff
	if timeout == 0 {
		timeout = DefaultWebhookTimeout
	}
	if pause == 0 {
		pause = time.Second
	}
	client := w.Client
	if client == nil {
		client = &http.Client{}
	}
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("notifying the webhook at %s: %w", u.Host, ctx.Err())
			case <-time.After(pause):
			}
			pause *= 2
		}
		if last = post(ctx, client, w.URL, body, timeout); last == nil {
			return nil
		}
	}
	return fmt.Errorf("notifying the webhook at %s failed after %d attempts: %w", u.Host, attempts, last)
}

func post(ctx context.Context, client *http.Client, target string, body []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New("the request could not be made")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which holds the secret
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("it answered %s", resp.Status)
	}
	return nil
}

// text is the line a person reads in the channel.
func text(d Deployment) string {
	what := d.Kind + " " + d.Name
	if d.Kind == KindRun {
		what = d.Name
	}
	took := time.Duration(d.Seconds * float64(time.Second)).Round(time.Second)
	if d.Operation == OpRestore {
		if d.OK {
			return fmt.Sprintf("bbr: restored %s in %s from %s", what, took, d.Backup)
		}
		return fmt.Sprintf(":rotating_light: bbr: the restore of %s FAILED after %s: %s", what, took, why(d.Errors))
	}
	if d.OK {
		return fmt.Sprintf("bbr: backed up %s in %s (lock window %s): %s", what, took,
			time.Duration(d.LockWindowSeconds*float64(time.Second)).Round(time.Millisecond), d.Backup)
	}
	return fmt.Sprintf(":rotating_light: bbr: the backup of %s FAILED after %s: %s", what, took, why(d.Errors))
}

// why is the last line of errors that says what failed: not a line of a
// script's output (those are in the body).
func why(errors []string) string {
	for i := len(errors) - 1; i >= 0; i-- {
		if !strings.HasPrefix(errors[i], OutputPrefix) {
			return errors[i]
		}
	}
	return "no reason recorded"
}
