package labsuite_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	yaml "go.yaml.in/yaml/v2"
)

// concourseTask is what runTask reads of a task file.
type concourseTask struct {
	Inputs  []struct{ Name string } `yaml:"inputs"`
	Outputs []struct{ Name string } `yaml:"outputs"`
	Params  map[string]any          `yaml:"params"`
	Run     struct{ Path string }   `yaml:"run"`
}

// runTask runs concourse/tasks/<name> as Concourse does: in a fresh
// working directory holding each declared input (from inputs, by name)
// and an empty folder per output, with only the declared params in the
// environment (the task file's defaults, then params), run.path from the
// task file, and TMPDIR an empty directory beside the working directory
// (taskTmp). It returns the result and the working directory.
func runTask(name string, inputs map[string]string, params map[string]string) (result, string) {
	repo, err := filepath.Abs(filepath.Join("..", "..", ".."))
	Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(filepath.Join(repo, "concourse", "tasks", name, "task.yml"))
	Expect(err).NotTo(HaveOccurred())
	var t concourseTask
	Expect(yaml.Unmarshal(raw, &t)).To(Succeed())
	work := filepath.Join(GinkgoT().TempDir(), "build")
	Expect(os.MkdirAll(work, 0o755)).To(Succeed())
	Expect(os.Mkdir(taskTmp(work), 0o700)).To(Succeed())
	sources := map[string]string{"bbr": filepath.Dir(bbrBin), "bbr-tasks": repo}
	for k, v := range inputs {
		sources[k] = v
	}
	for _, in := range t.Inputs {
		src, ok := sources[in.Name]
		Expect(ok).To(BeTrue(), "task %s needs input %s", name, in.Name)
		Expect(os.Symlink(src, filepath.Join(work, in.Name))).To(Succeed())
	}
	for _, out := range t.Outputs {
		Expect(os.Mkdir(filepath.Join(work, out.Name), 0o755)).To(Succeed())
	}
	// The task image has the bosh CLI on its PATH.
	env := []string{"PATH=" + filepath.Dir(boshBin) + ":" + os.Getenv("PATH"), "HOME=" + work, "TMPDIR=" + taskTmp(work)}
	var declared []string
	for k := range t.Params {
		declared = append(declared, k)
	}
	sort.Strings(declared)
	for _, k := range declared {
		v, given := params[k]
		if !given && t.Params[k] != nil {
			v = strings.TrimSpace(yamlScalar(t.Params[k]))
		}
		env = append(env, k+"="+v)
	}
	for k := range params {
		Expect(t.Params).To(HaveKey(k), "task %s does not declare param %s", name, k)
	}
	cmd := exec.Command(filepath.Join(work, t.Run.Path))
	cmd.Dir, cmd.Env = work, env
	out, err := cmd.CombinedOutput()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else {
		Expect(err).NotTo(HaveOccurred())
	}
	return result{out: string(out), code: code}, work
}

// taskTmp is the TMPDIR of the task run in work.
func taskTmp(work string) string { return filepath.Join(filepath.Dir(work), "tmp") }

func yamlScalar(v any) string {
	raw, err := yaml.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return strings.Trim(string(raw), "'\"\n")
}

// labParams are the lab Director's params, as a pipeline passes them.
func labParams(deployment string) map[string]string {
	p := map[string]string{}
	for _, kv := range bbrEnv(deployment) {
		k, v, _ := strings.Cut(kv, "=")
		p[k] = v
	}
	return p
}
