package director

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

type userKey struct{}

// authed accepts basic auth (basic mode) or a bearer token this server's
// UAA issued (uaa mode), and answers 401 like a Director otherwise.
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.authenticate(r); err != nil {
			writeError(w, http.StatusUnauthorized, 401, "Not authorized: '"+r.URL.Path+"'")
			return
		}
		h(w, r)
	})
}

// authenticate returns the user name of a valid request.
func (s *Server) authenticate(r *http.Request) (string, error) {
	d := s.cfg.Lab.Director
	if d.Auth == "uaa" {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return "", errUnauthorized
		}
		return s.tokens.check(token)
	}
	user, pass, ok := r.BasicAuth()
	if !ok || !equal(user, d.Client) || !equal(pass, d.ClientSecret) {
		return "", errUnauthorized
	}
	return user, nil
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// tokenStore issues JWT-shaped tokens (bosh-cli reads their payload) and
// remembers them; only tokens it issued and that have not expired pass.
type tokenStore struct {
	mu     sync.Mutex
	key    []byte
	issued map[string]tokenInfo
}

type tokenInfo struct {
	client  string
	expires time.Time
}

const tokenLifetime = time.Hour

func newTokenStore() *tokenStore {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &tokenStore{key: key, issued: map[string]tokenInfo{}}
}

func (t *tokenStore) issue(client string) (string, error) {
	exp := time.Now().Add(tokenLifetime)
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	payload, _ := json.Marshal(map[string]any{
		"jti": hex.EncodeToString(jti), "client_id": client, "sub": client, "cid": client,
		"scope": []string{"bosh.admin"}, "grant_type": "client_credentials",
		"iat": time.Now().Unix(), "exp": exp.Unix(), "iss": "bbr-lab-uaa",
	})
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, t.key)
	mac.Write([]byte(signing))
	token := signing + "." + enc.EncodeToString(mac.Sum(nil))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.issued[token] = tokenInfo{client: client, expires: exp}
	return token, nil
}

func (t *tokenStore) check(token string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	info, ok := t.issued[token]
	if !ok || time.Now().After(info.expires) {
		return "", errUnauthorized
	}
	return info.client, nil
}

// UAAHandler is the UAA's token endpoint: the client-credentials grant,
// with the client given by basic auth (as bosh-cli sends it) or form fields.
func (s *Server) UAAHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "only client_credentials is supported"})
			return
		}
		client, secret, ok := r.BasicAuth()
		if !ok {
			client, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		d := s.cfg.Lab.Director
		if !equal(client, d.Client) || !equal(secret, d.ClientSecret) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "error_description": "Bad credentials"})
			return
		}
		token, err := s.tokens.issue(client)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"access_token": token, "token_type": "bearer", "expires_in": int(tokenLifetime.Seconds()),
			"scope": "bosh.admin", "jti": token[len(token)-16:],
		})
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"app": map[string]string{"version": "lab"}, "prompts": map[string]any{}})
	})
	return s.logged(mux)
}

// info is GET /info: unauthenticated, naming the user when the request
// carries valid credentials, and the auth type clients must use.
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	d := s.cfg.Lab.Director
	auth := map[string]any{"type": "basic", "options": map[string]any{}}
	if d.Auth == "uaa" {
		url := "https://" + d.UAAAddress
		auth = map[string]any{"type": "uaa", "options": map[string]any{"url": url, "urls": map[string]string{"web": url}}}
	}
	resp := map[string]any{
		"name": "bbr-lab", "uuid": "6b1b3b0e-1ab5-4d5d-9d4e-00000000b0b0", "version": "282.0.0 (00000000)",
		"cpi": "lab", "stemcell_os": "ubuntu-jammy", "stemcell_version": "1.0",
		"user_authentication": auth,
		"features": map[string]any{
			"snapshots":              map[string]any{"status": false},
			"config_server":          map[string]any{"status": false, "extras": map[string]any{"urls": []string{}}},
			"local_dns":              map[string]any{"status": false, "extras": map[string]any{"domain_name": "bosh"}},
			"power_dns":              map[string]any{"status": false, "extras": map[string]any{"domain_name": "bosh"}},
			"compiled_package_cache": map[string]any{"status": false, "extras": map[string]any{"provider": nil}},
		},
	}
	if user, err := s.authenticate(r); err == nil {
		resp["user"] = user
	}
	writeJSON(w, http.StatusOK, resp)
}
