package deploy

import "regexp"

// Vars are the values of the ((lab_director_*)) variables, which exist
// only once up has made the CA and the client secret.
func Vars(directorAddress string, caPEM []byte, secret string) map[string]string {
	return map[string]string{
		"((lab_director_url))":           "https://" + directorAddress,
		"((lab_director_ca_cert))":       string(caPEM),
		"((lab_director_client))":        "admin",
		"((lab_director_client_secret))": secret,
	}
}

// ResolveVars stands in for the Director's config server: a job property
// whose whole value is one of vars' names (e.g. "((lab_director_url))")
// gets the lab's value. This is how a deployment in the lab (a jumpbox
// with bbr's errands) points at the lab's own Director.
func ResolveVars(plans []Planned, vars map[string]string) {
	eachProperty(plans, func(v string) string {
		if val, ok := vars[v]; ok {
			return val
		}
		return v
	})
}

var variableRE = regexp.MustCompile(`\(\(\s*!?([A-Za-z0-9_./:-]+)\s*\)\)`)

// unresolvedVariable finds a ((variable)) left in the plan's job
// properties once the lab's own are resolved.
func unresolvedVariable(plan Planned) (name string, found bool) {
	eachProperty([]Planned{plan}, func(v string) string {
		if m := variableRE.FindStringSubmatch(v); m != nil && !found {
			name, found = m[1], true
		}
		return v
	})
	return name, found
}

// eachProperty replaces every string in the plans' job properties, at
// any depth, with what f makes of it.
func eachProperty(plans []Planned, f func(string) string) {
	for _, p := range plans {
		for _, spec := range p.Specs {
			for _, job := range spec.Jobs {
				walk(job.Properties, f)
			}
		}
	}
}

// walk replaces in place every string in v, as YAML decodes it, and
// returns v with them replaced.
func walk(v any, f func(string) string) any {
	switch t := v.(type) {
	case string:
		return f(t)
	case map[string]any:
		for k, e := range t {
			t[k] = walk(e, f)
		}
	case map[any]any:
		for k, e := range t {
			t[k] = walk(e, f)
		}
	case []any:
		for i, e := range t {
			t[i] = walk(e, f)
		}
	}
	return v
}
