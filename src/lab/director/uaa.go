package director

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// tokenLifetime is what the lab's UAA grants. bosh-cli fetches a new token
// when the Director answers 401, so expiry mid-backup is harmless.
const tokenLifetime = time.Hour

// adminScope is the scope a Director requires for everything bbr does.
const adminScope = "bosh.admin"

// tokenIssuer makes and checks the UAA's access tokens: JWTs signed with
// HS256 under a key that lives as long as the server, so a token is valid
// exactly when this server issued it and it has not expired, with no list
// of tokens to keep. bosh-cli reads the payload (scope, exp, user_name),
// as it does a real UAA's tokens; it never checks the signature.
type tokenIssuer struct {
	key    []byte
	issuer string
	now    func() time.Time
}

// tokenClaims is the payload of a client-credentials token, as UAA makes it.
type tokenClaims struct {
	JTI         string   `json:"jti"`
	Sub         string   `json:"sub"`
	Authorities []string `json:"authorities"`
	Scope       []string `json:"scope"`
	ClientID    string   `json:"client_id"`
	CID         string   `json:"cid"`
	AZP         string   `json:"azp"`
	GrantType   string   `json:"grant_type"`
	IssuedAt    int64    `json:"iat"`
	Expires     int64    `json:"exp"`
	Issuer      string   `json:"iss"`
	ZoneID      string   `json:"zid"`
	Audience    []string `json:"aud"`
}

var jwtEncoding = base64.RawURLEncoding

func newTokenIssuer(issuer string) *tokenIssuer {
	key := make([]byte, 32)
	// crypto/rand.Read never fails on Linux (it panics rather than return
	// short), so the error needs no handling.
	_, _ = rand.Read(key)
	return &tokenIssuer{key: key, issuer: issuer, now: time.Now}
}

// issue returns a signed token for client and its jti.
func (t *tokenIssuer) issue(client string) (token, jti string, err error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", "", fmt.Errorf("making token id: %w", err)
	}
	now := t.now()
	claims := tokenClaims{
		JTI: hex.EncodeToString(id), Sub: client, Authorities: []string{adminScope}, Scope: []string{adminScope},
		ClientID: client, CID: client, AZP: client, GrantType: "client_credentials",
		IssuedAt: now.Unix(), Expires: now.Add(tokenLifetime).Unix(), Issuer: t.issuer, ZoneID: "uaa",
		Audience: []string{client, "bosh"},
	}
	header, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "bbr-lab"})
	if err != nil {
		return "", "", fmt.Errorf("encoding token header: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", "", fmt.Errorf("encoding token claims: %w", err)
	}
	signing := jwtEncoding.EncodeToString(header) + "." + jwtEncoding.EncodeToString(payload)
	return signing + "." + jwtEncoding.EncodeToString(t.sign(signing)), claims.JTI, nil
}

func (t *tokenIssuer) sign(signing string) []byte {
	mac := hmac.New(sha256.New, t.key)
	mac.Write([]byte(signing))
	return mac.Sum(nil)
}

// verify returns the client of a token this issuer signed that has not
// expired and carries the admin scope.
func (t *tokenIssuer) verify(token string) (string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", false
	}
	sig, err := jwtEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, t.sign(parts[0]+"."+parts[1])) {
		return "", false
	}
	payload, err := jwtEncoding.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	var claims tokenClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", false
	}
	if t.now().Unix() >= claims.Expires || !slices.Contains(claims.Scope, adminScope) {
		return "", false
	}
	return claims.ClientID, true
}

// uaaError is the OAuth error body UAA sends.
type uaaError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// UAAHandler is the lab's UAA: the client-credentials grant at
// POST /oauth/token, with the client given by basic auth (as bosh-cli
// sends it) or by client_id/client_secret form fields, and GET /login,
// which the bosh CLI reads for its login prompts.
func (s *Server) UAAHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", s.uaaToken)
	mux.HandleFunc("GET /login", uaaLogin)
	return s.log.wrap("uaa", mux)
}

func (s *Server) uaaToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, uaaError{"invalid_request", "cannot parse the form: " + err.Error()})
		return
	}
	// Form fields are read from the body only: a secret in the query
	// string would end up in logs.
	client, secret, ok := r.BasicAuth()
	if !ok {
		client, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if client == "" {
		writeJSON(w, http.StatusUnauthorized, uaaError{"unauthorized", "Full authentication is required to access this resource"})
		return
	}
	if !s.validClient(client, secret) {
		writeJSON(w, http.StatusUnauthorized, uaaError{"unauthorized", "Bad credentials"})
		return
	}
	if grant := r.PostForm.Get("grant_type"); grant != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, uaaError{"unsupported_grant_type", fmt.Sprintf("Unsupported grant type: %s (the lab's UAA grants client_credentials only)", grant)})
		return
	}
	token, jti, err := s.tokens.issue(client)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, uaaError{"server_error", err.Error()})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"token_type":   "bearer",
		"expires_in":   int(tokenLifetime.Seconds()),
		"scope":        adminScope,
		"jti":          jti,
	})
}

// uaaLogin is UAA's /login as JSON: the prompts `bosh login` would ask.
func uaaLogin(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"app":       map[string]string{"version": "bbr-lab"},
		"zone_name": "uaa",
		"prompts": map[string][]string{
			"username": {"text", "Email"},
			"password": {"password", "Password"},
		},
	})
}
