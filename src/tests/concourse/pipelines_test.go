package concourse_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	yaml "go.yaml.in/yaml/v2"
)

var root = filepath.Join("..", "..", "..")

// task is the part of a Concourse task file the pipelines rely on.
type task struct {
	Platform      string `yaml:"platform"`
	ImageResource struct {
		Type   string         `yaml:"type"`
		Source map[string]any `yaml:"source"`
	} `yaml:"image_resource"`
	Inputs  []struct{ Name string } `yaml:"inputs"`
	Outputs []struct{ Name string } `yaml:"outputs"`
	Params  map[string]any          `yaml:"params"`
	Run     struct{ Path string }   `yaml:"run"`
}

type step struct {
	Get          string            `yaml:"get"`
	Task         string            `yaml:"task"`
	File         string            `yaml:"file"`
	Params       map[string]any    `yaml:"params"`
	InputMapping map[string]string `yaml:"input_mapping"`
	InParallel   []step            `yaml:"in_parallel"`
	OnFailure    *step             `yaml:"on_failure"`
}

type pipeline struct {
	Resources []struct{ Name, Type string } `yaml:"resources"`
	Jobs      []struct {
		Name string `yaml:"name"`
		Plan []step `yaml:"plan"`
	} `yaml:"jobs"`
}

func readYAML(path string, into any) string {
	raw, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	Expect(yaml.Unmarshal(raw, into)).To(Succeed(), path)
	return string(raw)
}

// steps flattens a plan: in_parallel and on_failure included.
func steps(plan []step) []step {
	var out []step
	for _, s := range plan {
		out = append(out, s)
		out = append(out, steps(s.InParallel)...)
		if s.OnFailure != nil {
			out = append(out, steps([]step{*s.OnFailure})...)
		}
	}
	return out
}

var _ = Describe("the reference pipelines", func() {
	variable := regexp.MustCompile(`\(\(([a-z0-9_-]+)\)\)`)
	var vars map[string]any
	BeforeEach(func() {
		vars = nil
		readYAML(filepath.Join(root, "concourse", "pipelines", "vars-example.yml"), &vars)
	})

	pipelines, _ := filepath.Glob(filepath.Join(root, "concourse", "pipelines", "*.yml"))
	for _, path := range pipelines {
		if strings.HasSuffix(path, "vars-example.yml") {
			continue
		}
		It(filepath.Base(path)+": wires every task's inputs, declares every param it sets, and lists every variable in the vars example", func() {
			var p pipeline
			raw := readYAML(path, &p)
			for _, m := range variable.FindAllStringSubmatch(raw, -1) {
				Expect(vars).To(HaveKey(m[1]), "%s uses ((%s))", path, m[1])
			}
			var resources []string
			for _, r := range p.Resources {
				resources = append(resources, r.Name)
			}
			Expect(p.Jobs).NotTo(BeEmpty())
			for _, job := range p.Jobs {
				all := steps(job.Plan)
				var got []string
				for _, s := range all {
					if s.Get != "" {
						Expect(resources).To(ContainElement(s.Get), "job %s gets an undeclared resource", job.Name)
						got = append(got, s.Get)
					}
				}
				tasks := 0
				for _, s := range all {
					if s.Task == "" {
						continue
					}
					tasks++
					file := strings.TrimPrefix(s.File, "bbr-tasks/")
					Expect(file).NotTo(Equal(s.File), "task %s comes from the bbr-tasks input", s.Task)
					var t task
					taskRaw := readYAML(filepath.Join(root, file), &t)
					for _, m := range variable.FindAllStringSubmatch(taskRaw, -1) {
						Expect(vars).To(HaveKey(m[1]), "%s uses ((%s))", file, m[1])
					}
					for _, in := range t.Inputs {
						source := in.Name
						if mapped, ok := s.InputMapping[in.Name]; ok {
							source = mapped
						}
						Expect(got).To(ContainElement(source), "job %s: task %s's input %s is not fetched", job.Name, s.Task, in.Name)
					}
					for param := range s.Params {
						Expect(t.Params).To(HaveKey(param), "job %s sets %s, which task %s does not declare", job.Name, param, file)
					}
					script := filepath.Join(root, t.Run.Path[len("bbr-tasks/"):])
					info, err := os.Stat(script)
					Expect(err).NotTo(HaveOccurred(), "task %s runs %s", file, t.Run.Path)
					Expect(info.Mode().Perm()&0o111).NotTo(BeZero(), "%s is executable", script)
				}
				Expect(tasks).To(BeNumerically(">", 0), "job %s runs a task", job.Name)
			}
		})
	}

	It("every task file runs its own script, from the bbr-tasks input, on linux", func() {
		files, _ := filepath.Glob(filepath.Join(root, "concourse", "tasks", "*", "task.yml"))
		Expect(len(files)).To(BeNumerically(">=", 6))
		for _, f := range files {
			var t task
			readYAML(f, &t)
			Expect(t.Platform).To(Equal("linux"))
			Expect(t.Run.Path).To(Equal("bbr-tasks/concourse/tasks/" + filepath.Base(filepath.Dir(f)) + "/task.sh"))
			names := []string{}
			for _, in := range t.Inputs {
				names = append(names, in.Name)
			}
			Expect(slices.Contains(names, "bbr-tasks")).To(BeTrue(), f)
		}
	})
})
