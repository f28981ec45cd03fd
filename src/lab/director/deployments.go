package director

import "net/http"

// deploymentResp is one entry of GET /deployments.
type deploymentResp struct {
	Name        string        `json:"name"`
	CloudConfig string        `json:"cloud_config"`
	Releases    []nameVersion `json:"releases"`
	Stemcells   []nameVersion `json:"stemcells"`
	Teams       []string      `json:"teams"`
}

// listDeployments is GET /deployments (the bosh CLI adds
// ?exclude_configs=true, which changes nothing here: the lab has no configs).
func (s *Server) listDeployments(w http.ResponseWriter, _ *http.Request) {
	deployments := s.Deployments()
	out := make([]deploymentResp, 0, len(deployments))
	for _, d := range deployments {
		m := s.summary(d.Name)
		out = append(out, deploymentResp{
			Name: d.Name, CloudConfig: "none", Releases: m.releases, Stemcells: m.stemcells, Teams: []string{},
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// manifest is GET /deployments/NAME: the raw manifest, as deployed.
func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	if d, ok := s.findDeployment(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]string{"manifest": d.Manifest})
	}
}
