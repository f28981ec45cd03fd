package director

import "gopkg.in/yaml.v3"

// manifestSummary is what the API reports about a deployment beyond its
// raw manifest, read once from the manifest.
type manifestSummary struct {
	releases  []nameVersion
	stemcells []nameVersion
	// vmTypes maps an instance group to its vm_type.
	vmTypes map[string]string
}

type nameVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Versions a Director reports for what a manifest asks as "latest": a real
// Director resolves "latest" to an uploaded version, and clients parse the
// versions it lists (bosh-cli as semantic versions), so "latest" would not do.
const (
	resolvedReleaseVersion  = "0+dev.1"
	resolvedStemcellVersion = "1.0"
)

// summarize reads releases, stemcells and vm types from a manifest. A
// manifest the lab could deploy is valid YAML; anything unreadable is
// simply left out, as the raw manifest is still served.
func summarize(raw string) manifestSummary {
	var m struct {
		Releases []struct {
			Name    string    `yaml:"name"`
			Version yaml.Node `yaml:"version"`
		} `yaml:"releases"`
		Stemcells []struct {
			Name    string    `yaml:"name"`
			OS      string    `yaml:"os"`
			Version yaml.Node `yaml:"version"`
		} `yaml:"stemcells"`
		InstanceGroups []struct {
			Name   string `yaml:"name"`
			VMType string `yaml:"vm_type"`
		} `yaml:"instance_groups"`
	}
	_ = yaml.Unmarshal([]byte(raw), &m)

	sum := manifestSummary{releases: []nameVersion{}, stemcells: []nameVersion{}, vmTypes: map[string]string{}}
	for _, r := range m.Releases {
		sum.releases = append(sum.releases, nameVersion{r.Name, resolve(r.Version.Value, resolvedReleaseVersion)})
	}
	for _, sc := range m.Stemcells {
		name := sc.Name
		if name == "" {
			name = "bosh-lab-" + sc.OS + "-go_agent"
		}
		sum.stemcells = append(sum.stemcells, nameVersion{name, resolve(sc.Version.Value, resolvedStemcellVersion)})
	}
	for _, g := range m.InstanceGroups {
		sum.vmTypes[g.Name] = g.VMType
	}
	return sum
}

// resolve turns a manifest version into the version the Director lists.
// It is read as the raw scalar, so that "1.10" stays "1.10" rather than
// becoming the number 1.1.
func resolve(v, latest string) string {
	if v == "" || v == "latest" {
		return latest
	}
	return v
}
