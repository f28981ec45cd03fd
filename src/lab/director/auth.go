package director

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// authed lets a request through to h only with valid credentials: basic
// auth in basic mode, a bearer token from the lab's UAA in uaa mode. It
// refuses others as the Director does: 401 with a plain-text body that
// bosh-cli quotes in its error ("Not authorized: '/deployments'").
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authenticate(r); !ok {
			if s.cfg.Lab.Director.Auth != authUAA {
				w.Header().Set("WWW-Authenticate", `Basic realm="BOSH Director"`)
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("Not authorized: '" + r.URL.Path + "'\n"))
			return
		}
		h(w, r)
	})
}

// authenticate returns the name of the authenticated user (the client).
func (s *Server) authenticate(r *http.Request) (string, bool) {
	d := s.cfg.Lab.Director
	if d.Auth == authUAA {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return "", false
		}
		return s.tokens.verify(strings.TrimSpace(token))
	}
	user, pass, ok := r.BasicAuth()
	if !ok || !s.validClient(user, pass) {
		return "", false
	}
	return user, true
}

// validClient compares in constant time, so the lab's secret cannot be
// guessed byte by byte from response times.
func (s *Server) validClient(client, secret string) bool {
	d := s.cfg.Lab.Director
	okClient := subtle.ConstantTimeCompare([]byte(client), []byte(d.Client)) == 1
	okSecret := subtle.ConstantTimeCompare([]byte(secret), []byte(d.ClientSecret)) == 1
	return okClient && okSecret && d.Client != ""
}
