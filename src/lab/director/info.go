package director

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
)

// directorVersion is what the lab's Director reports: a current BOSH release, so
// clients that check the Director's version treat the lab as modern.
const directorVersion = "282.0.0 (00000000)"

// info is GET /info. Like a real Director it answers without credentials
// (clients read it to learn how to authenticate) and names the user when
// the request carries valid ones.
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	d := s.cfg.Lab.Director
	auth := map[string]any{"type": authBasic, "options": map[string]any{}}
	if d.Auth == authUAA {
		url := "https://" + d.UAAAddress
		auth = map[string]any{"type": authUAA, "options": map[string]any{"url": url, "urls": map[string]string{"web": url}}}
	}
	resp := map[string]any{
		"name":                "bbr-lab",
		"uuid":                s.uuid(),
		"version":             directorVersion,
		"user":                nil,
		"cpi":                 "lab",
		"stemcell_os":         "ubuntu-jammy",
		"stemcell_version":    "1.0",
		"user_authentication": auth,
		"features": map[string]any{
			"local_dns":              map[string]any{"status": false, "extras": map[string]any{"domain_name": "bosh"}},
			"power_dns":              map[string]any{"status": false, "extras": map[string]any{"domain_name": "bosh"}},
			"snapshots":              map[string]any{"status": false},
			"config_server":          map[string]any{"status": false, "extras": map[string]any{"urls": []string{}}},
			"compiled_package_cache": map[string]any{"status": false, "extras": map[string]any{"provider": nil}},
		},
	}
	if user, ok := s.authenticate(r); ok {
		resp["user"] = user
	}
	writeJSON(w, http.StatusOK, resp)
}

// uuid is stable for a lab (its directory and address), as a Director's
// UUID is stable across restarts, and differs between labs.
func (s *Server) uuid() string { return nameUUID(s.cfg.Lab.Dir, s.cfg.Lab.Director.Address) }

// nameUUID derives a UUID (version 5 layout, SHA-256) from names, for
// identifiers that must look real and stay the same from run to run.
func nameUUID(names ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(names, "\x00")))
	sum[6] = sum[6]&0x0f | 0x50 // version 5 (name-based)
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}
