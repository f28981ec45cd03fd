// Package director is what bbr needs from the BOSH Director: a deployment's
// instances, its manifest, and ephemeral SSH users on its instances. It is a
// thin layer over bosh-cli's director and uaa packages, the same client the
// bosh CLI and upstream bbr use; only the SSH cleanup request is made here,
// with bosh-cli's TLS settings and credentials, to follow its task
// (cleanup.go).
package director

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	boshdir "github.com/cloudfoundry/bosh-cli/v7/director"
	boshuaa "github.com/cloudfoundry/bosh-cli/v7/uaa"
	boshlog "github.com/cloudfoundry/bosh-utils/logger"

	"github.com/bbr-release/bbr/src/orchestrator"
)

// Config says how to reach and authenticate to the Director.
type Config struct {
	// URL is the Director's address, e.g. https://10.0.0.6:25555.
	URL string
	// Client and ClientSecret are a basic-auth user and password, or a UAA
	// client and its secret when the Director uses UAA.
	Client       string
	ClientSecret string
	// CACert is the PEM of the CA that signed the Director (and UAA) cert.
	CACert string
}

// ErrUnreachable wraps failures to reach the Director at all.
var ErrUnreachable = errors.New("bosh director unreachable or unhealthy")

// Client talks to one Director.
type Client struct {
	dir boshdir.Director
	raw *rawClient // the SSH cleanup, whose task bosh-cli drops
}

// New checks that the Director answers (GET /info, unauthenticated), picks
// basic or UAA client-credentials auth from its answer, and returns a client.
// ctx bounds the wait for that answer.
func New(ctx context.Context, cfg Config, logger boshlog.Logger) (*Client, error) {
	if _, err := url.Parse(cfg.URL); err != nil || cfg.URL == "" {
		return nil, fmt.Errorf("invalid bosh URL %q: %v", cfg.URL, err)
	}
	factoryCfg, err := boshdir.NewConfigFromURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid bosh URL %q: %w", cfg.URL, err)
	}
	factoryCfg.CACert = cfg.CACert
	factory := boshdir.NewFactory(logger)

	anon, err := factory.New(factoryCfg, boshdir.NewNoopTaskReporter(), boshdir.NewNoopFileReporter())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	info, err := call(ctx, anon.Info)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("connecting to the Director: %w", withContext(ctx, cmp.Or(err, ctx.Err())))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}

	if info.Auth.Type == "uaa" {
		tokenFunc, err := uaaTokenFunc(info, cfg, logger)
		if err != nil {
			return nil, err
		}
		factoryCfg.TokenFunc = tokenFunc
	} else {
		factoryCfg.Client = cfg.Client
		factoryCfg.ClientSecret = cfg.ClientSecret
	}
	dir, err := factory.New(factoryCfg, boshdir.NewNoopTaskReporter(), boshdir.NewNoopFileReporter())
	if err != nil {
		return nil, fmt.Errorf("building director client: %w", err)
	}
	raw, err := newRawClient(factoryCfg)
	if err != nil {
		return nil, fmt.Errorf("building director client: %w", err)
	}
	return &Client{dir: dir, raw: raw}, nil
}

func uaaTokenFunc(info boshdir.Info, cfg Config, logger boshlog.Logger) (func(bool) (string, error), error) {
	uaaURL, ok := info.Auth.Options["url"].(string)
	if !ok || uaaURL == "" {
		return nil, fmt.Errorf("invalid UAA URL: the Director's /info names no UAA url")
	}
	uaaCfg, err := boshuaa.NewConfigFromURL(uaaURL)
	if err != nil {
		return nil, fmt.Errorf("invalid UAA URL %q: %w", uaaURL, err)
	}
	uaaCfg.Client = cfg.Client
	uaaCfg.ClientSecret = cfg.ClientSecret
	uaaCfg.CACert = cfg.CACert
	uaa, err := boshuaa.NewFactory(logger).New(uaaCfg)
	if err != nil {
		return nil, fmt.Errorf("building UAA client: %w", err)
	}
	// bosh-cli's token session is not safe for concurrent use, and bbr
	// talks to the Director from many goroutines.
	session := boshuaa.NewClientTokenSession(uaa)
	var mu sync.Mutex
	return func(retried bool) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		return session.TokenFunc(retried)
	}, nil
}

// Deployments lists the names of all deployments.
func (c *Client) Deployments(ctx context.Context) ([]string, error) {
	return call(ctx, func() ([]string, error) {
		deps, err := c.dir.Deployments()
		if err != nil {
			return nil, fmt.Errorf("listing deployments: %w", err)
		}
		names := make([]string, 0, len(deps))
		for _, d := range deps {
			names = append(names, d.Name())
		}
		return names, nil
	})
}

// VMs lists a deployment's instances.
func (c *Client) VMs(ctx context.Context, deployment string) ([]orchestrator.VM, error) {
	return call(ctx, func() ([]orchestrator.VM, error) {
		dep, err := c.dir.FindDeployment(deployment)
		if err != nil {
			return nil, err
		}
		infos, err := dep.VMInfos()
		if err != nil {
			return nil, fmt.Errorf("finding instances of deployment %s: %w", deployment, err)
		}
		vms := make([]orchestrator.VM, 0, len(infos))
		for _, info := range infos {
			if info.Index == nil {
				return nil, fmt.Errorf("the Director gave no index for instance %s/%s", info.JobName, info.ID)
			}
			vms = append(vms, orchestrator.VM{Group: info.JobName, ID: info.ID, Index: *info.Index, Bootstrap: info.Bootstrap, IPs: info.IPs})
		}
		return vms, nil
	})
}

// Manifest returns a deployment's manifest.
func (c *Client) Manifest(ctx context.Context, deployment string) (string, error) {
	return call(ctx, func() (string, error) {
		dep, err := c.dir.FindDeployment(deployment)
		if err != nil {
			return "", err
		}
		m, err := dep.Manifest()
		if err != nil {
			return "", fmt.Errorf("fetching the manifest of deployment %s: %w", deployment, err)
		}
		return m, nil
	})
}

// SetUpSSH creates user with publicKey on every instance of group.
//
// Once ctx is done it still waits, up to SetUpGrace, for the Director's
// task: a cleanup sent while the task runs could miss the user it then
// makes. Past that it gives up with orchestrator.ErrSetUpUnfinished.
func (c *Client) SetUpSSH(ctx context.Context, deployment, group, user, publicKey string) ([]orchestrator.SSHHost, error) {
	return callWaiting(ctx, SetUpGrace, func() ([]orchestrator.SSHHost, error) {
		dep, err := c.dir.FindDeployment(deployment)
		if err != nil {
			return nil, err
		}
		res, err := dep.SetUpSSH(boshdir.NewAllOrInstanceGroupOrInstanceSlug(group, ""), boshdir.SSHOpts{Username: user, PublicKey: publicKey})
		if err != nil {
			return nil, fmt.Errorf("setting up ssh on %s: %w", group, c.taskError(err))
		}
		hosts := make([]orchestrator.SSHHost, 0, len(res.Hosts))
		for _, h := range res.Hosts {
			hosts = append(hosts, orchestrator.SSHHost{Group: h.Job, IndexOrID: h.IndexOrID, IP: h.Host, HostPublicKey: h.HostPublicKey})
		}
		return hosts, nil
	})
}

// failedTask is how bosh-cli reports a task that ended in error.
var failedTask = regexp.MustCompile(`Expected task '(\d+)' to succeed`)

// taskError adds a failed task's own message to bosh-cli's "Expected task
// 'N' to succeed but state is 'error'", as `bosh task N` would show it.
func (c *Client) taskError(err error) error {
	m := failedTask.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	id, _ := strconv.Atoi(m[1])
	if t, ferr := c.dir.FindTask(id); ferr == nil && t.Result() != "" {
		return fmt.Errorf("%w: %s (see `bosh task %d`)", err, t.Result(), id)
	}
	return fmt.Errorf("%w (see `bosh task %d`)", err, id)
}

// SetUpGrace bounds the wait for an SSH set-up task after a cancel.
var SetUpGrace = 30 * time.Second

// call runs a blocking bosh-cli call so that the caller can stop waiting
// when ctx is done; bosh-cli itself takes no context.
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	return callWaiting(ctx, 0, f)
}

// callWaiting is call, but once ctx is done it still waits up to grace for
// f to return, so that what f started on the Director has ended.
func callWaiting[T any](ctx context.Context, grace time.Duration, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	var zero T
	select {
	case r := <-ch:
		return r.v, withContext(ctx, simplify(r.err))
	case <-ctx.Done():
	}
	if grace == 0 {
		return zero, ctx.Err()
	}
	select {
	case r := <-ch:
		return zero, withContext(ctx, cmp.Or(r.err, ctx.Err()))
	case <-time.After(grace):
		return zero, fmt.Errorf("%w after %s: %w", orchestrator.ErrSetUpUnfinished, grace, ctx.Err())
	}
}

// withContext keeps ctx's error in the chain of err once ctx is done. A
// call that failed because the run was cancelled (or timed out) must say
// so, to errors.Is as to the operator, rather than read as a Director
// that is down.
func withContext(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if err == nil || cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w: %w", cerr, err)
}

// simplify turns bosh-cli's 401 into a message an operator can act on.
func simplify(err error) error {
	if err == nil {
		return nil
	}
	// bosh-cli's and its UAA client's words for a 401 answer; a bare "401"
	// would also match task ids and sizes.
	if strings.Contains(err.Error(), "status code '401'") || strings.Contains(strings.ToLower(err.Error()), "not authorized") {
		return fmt.Errorf("the Director refused the credentials (check --username/--password or BOSH_CLIENT/BOSH_CLIENT_SECRET): %w", err)
	}
	return err
}
