package orchestrator_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/director"
	"github.com/bbr-release/bbr/src/orchestrator"
	"github.com/bbr-release/bbr/src/remote"
)

// event is one script run, in the order runs happened across the deployment.
type event struct {
	Instance string // group/index
	Job      string
	Script   string
	Env      map[string]string
}

// world is a fake deployment: a Director and instances that keep files in
// memory and understand the commands bbr sends.
type world struct {
	mu         sync.Mutex
	name       string
	manifest   string
	instances  []*fakeInstance
	events     []event
	setUps     []string // groups
	cleanUps   []string // group/id
	cleanUpErr error    // what CleanUpSSH returns
	dialErr    map[string]error
	vmsErr     error
	users      map[string]bool // SSH users set up and not yet cleaned up
	onSetUp    func()          // runs in SetUpSSH, without the world lock
}

type fakeInstance struct {
	w       *world
	group   string
	index   int
	id      string
	boot    bool
	jobs    map[string]*fakeJob
	files   map[string]map[string]string // staging dir -> path -> content
	staging bool                         // /var/vcap/store/bbr-backup exists
	closed  bool
	windows bool // answers `echo %OS%` as cmd.exe does, and nothing else
	// stagingOwner is the owner file a run wrote into the staging root.
	stagingOwner string
}

// lastQuoted is the last single-quoted argument of a command.
func lastQuoted(cmd string) string {
	i := strings.LastIndex(strings.TrimSuffix(cmd, "'"), "'")
	return cmd[i+1 : len(cmd)-1]
}

type fakeJob struct {
	scripts map[string]bool
	// data is what the backup script writes into its artifact dir.
	data map[string]string
	// restored is what the restore script found in its artifact dir.
	restored map[string]string
	metadata string
	fail     map[string]error
	// onRestore and onLock run inside the restore and pre-backup-lock
	// scripts, without the world lock; onCopy once the job's data has been
	// streamed out (backup) or in (restore), before the copy returns.
	onRestore, onLock, onCopy func()
	// streamErr fails streaming the job's data out; onChecksum runs, with
	// the command's context and without the world lock, before the
	// instance checksums the job's data.
	streamErr  error
	onChecksum func(context.Context)
	// onUnlock runs in post-backup-unlock like onChecksum; the script
	// fails if the context has ended by then.
	onUnlock func(context.Context)
}

func newWorld(name string) *world {
	return &world{name: name, manifest: "name: " + name + "\n", dialErr: map[string]error{}, users: map[string]bool{}}
}

func (w *world) add(group string, index int, jobs map[string]*fakeJob) *fakeInstance {
	inst := &fakeInstance{w: w, group: group, index: index, id: fmt.Sprintf("%s-id-%d", group, index), boot: index == 0, jobs: jobs, files: map[string]map[string]string{}}
	w.instances = append(w.instances, inst)
	return inst
}

func job(scripts ...string) *fakeJob {
	j := &fakeJob{scripts: map[string]bool{}, fail: map[string]error{}}
	for _, s := range scripts {
		j.scripts[s] = true
	}
	return j
}

func (j *fakeJob) withData(files map[string]string) *fakeJob { j.data = files; return j }
func (j *fakeJob) withMetadata(yaml string) *fakeJob {
	j.scripts["metadata"] = true
	j.metadata = yaml
	return j
}
func (j *fakeJob) failing(script string, err error) *fakeJob { j.fail[script] = err; return j }

func (w *world) ran() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.events {
		if e.Script != "metadata" {
			out = append(out, e.Instance+" "+e.Job+" "+e.Script)
		}
	}
	return out
}

func (w *world) eventsFor(script string) []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []event
	for _, e := range w.events {
		if e.Script == script {
			out = append(out, e)
		}
	}
	return out
}

// Director fake.

func (w *world) VMs(_ context.Context, dep string) ([]director.VM, error) {
	if w.vmsErr != nil {
		return nil, w.vmsErr
	}
	if dep != w.name {
		return nil, fmt.Errorf("Deployment '%s' doesn't exist", dep)
	}
	var vms []director.VM
	for _, i := range w.instances {
		vms = append(vms, director.VM{Group: i.group, ID: i.id, Index: i.index, Bootstrap: i.boot, IPs: []string{"10.0.0.1"}})
	}
	return vms, nil
}

func (w *world) Manifest(context.Context, string) (string, error) { return w.manifest, nil }

func (w *world) SetUpSSH(_ context.Context, _, group, user, key string) ([]director.SSHHost, error) {
	if w.onSetUp != nil {
		w.onSetUp()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setUps = append(w.setUps, group)
	w.users[user] = true
	var hosts []director.SSHHost
	for _, i := range w.instances {
		if i.group == group {
			hosts = append(hosts, director.SSHHost{Group: group, IndexOrID: i.id, IP: i.id, HostPublicKey: "key"})
		}
	}
	return hosts, nil
}

func (w *world) CleanUpSSH(_ context.Context, _, group, id, user string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cleanUps = append(w.cleanUps, group+"/"+id)
	delete(w.users, user)
	return w.cleanUpErr
}

func (w *world) dial(_ context.Context, host director.SSHHost, _ string, _ ssh.Signer) (orchestrator.Runner, error) {
	if err := w.dialErr[host.IndexOrID]; err != nil {
		return nil, err
	}
	for _, i := range w.instances {
		if i.id == host.IndexOrID {
			return i, nil
		}
	}
	return nil, errors.New("no such host")
}

// Runner fake: understands the commands bbr sends.

var (
	scriptCmd   = regexp.MustCompile(`^sudo((?: [A-Z_]+='[^']*')*) '/var/vcap/jobs/([^/]+)/bin/bbr/([a-z-]+)'$`)
	envAssign   = regexp.MustCompile(`([A-Z_]+)='([^']*)'`)
	tarOutCmd   = regexp.MustCompile(`^sudo tar -C '([^']+)' -c \.$`)
	rmCmd       = regexp.MustCompile(`^sudo rm -rf '?([^']+)'?$`)
	mkdirCmd    = regexp.MustCompile(`^sudo mkdir -p '([^']+)'$`)
	checksumCmd = regexp.MustCompile(`cd '\\''([^']+)'\\'' \|\| exit 1`)
	tarInCmd    = regexp.MustCompile(`mkdir -p '\\''([^']+)'\\'' && exec tar`)
)

func (i *fakeInstance) name() string { return fmt.Sprintf("%s/%d", i.group, i.index) }

func (i *fakeInstance) Run(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	i.w.mu.Lock()
	defer i.w.mu.Unlock()
	switch {
	case cmd == "echo %OS%" && i.windows:
		fmt.Fprintln(stdout, "Windows_NT")
		return nil
	case i.windows:
		return &remote.ExitError{Code: 1, Stderr: "'sudo' is not recognized as an internal or external command"}
	case cmd == "echo %OS%":
		fmt.Fprintln(stdout, "%OS%")
		return nil
	case strings.Contains(cmd, "find \"$d\""):
		var paths []string
		for name, j := range i.jobs {
			for s := range j.scripts {
				paths = append(paths, "/var/vcap/jobs/"+name+"/bin/bbr/"+s)
			}
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprint(stdout, p+"\x00")
		}
		return nil
	case strings.Contains(cmd, "if mkdir /var/vcap/store/bbr-backup 2>/dev/null"):
		if i.staging {
			fmt.Fprintln(stdout, "exists")
			fmt.Fprint(stdout, i.stagingOwner)
			return nil
		}
		i.staging = true
		i.stagingOwner = lastQuoted(cmd)
		fmt.Fprintln(stdout, "claimed")
		return nil
	case strings.Contains(cmd, "[ -e /var/vcap/store/bbr-backup ]"):
		if i.staging {
			fmt.Fprintln(stdout, "exists")
			fmt.Fprint(stdout, i.stagingOwner)
		}
		return nil
	case strings.HasPrefix(cmd, "id -u "):
		if i.w.users[strings.Trim(strings.TrimPrefix(cmd, "id -u "), "'")] {
			return nil
		}
		return &remote.ExitError{Code: 1, Stderr: "no such user"}
	case scriptCmd.MatchString(cmd):
		m := scriptCmd.FindStringSubmatch(cmd)
		hook := map[string]func(){"restore": i.jobs[m[2]].onRestore, "pre-backup-lock": i.jobs[m[2]].onLock}[m[3]]
		if hook != nil {
			i.w.mu.Unlock()
			hook()
			i.w.mu.Lock()
		}
		if unlock := i.jobs[m[2]].onUnlock; unlock != nil && m[3] == "post-backup-unlock" {
			i.w.mu.Unlock()
			unlock(ctx)
			i.w.mu.Lock()
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return i.runScript(cmd, stdout)
	case mkdirCmd.MatchString(cmd):
		dir := mkdirCmd.FindStringSubmatch(cmd)[1]
		i.staging = true
		if i.files[dir] == nil {
			i.files[dir] = map[string]string{}
		}
		return nil
	case tarOutCmd.MatchString(cmd):
		dir := tarOutCmd.FindStringSubmatch(cmd)[1]
		if j := i.jobs[filepath.Base(dir)]; j != nil && j.streamErr != nil {
			return j.streamErr
		}
		if err := writeTar(stdout, i.files[dir]); err != nil {
			return err
		}
		i.copied(dir)
		return nil
	case checksumCmd.MatchString(cmd):
		dir := checksumCmd.FindStringSubmatch(cmd)[1]
		if j := i.jobs[filepath.Base(dir)]; j != nil && j.onChecksum != nil {
			i.w.mu.Unlock()
			j.onChecksum(ctx)
			i.w.mu.Lock()
		}
		files := i.files[dir]
		for _, p := range sortedPaths(files) {
			sum := sha256.Sum256([]byte(files[p]))
			fmt.Fprintf(stdout, "%s  %s\x00", hex.EncodeToString(sum[:]), p)
		}
		return nil
	case tarInCmd.MatchString(cmd):
		dir := tarInCmd.FindStringSubmatch(cmd)[1]
		files, err := readTar(stdin)
		if err != nil {
			return &remote.ExitError{Code: 2, Stderr: err.Error()}
		}
		i.staging = true
		i.files[dir] = files
		i.copied(dir)
		return nil
	case rmCmd.MatchString(cmd):
		dir := rmCmd.FindStringSubmatch(cmd)[1]
		for d := range i.files {
			if d == dir || strings.HasPrefix(d, dir+"/") {
				delete(i.files, d)
			}
		}
		if dir == orchestrator.StagingRoot {
			i.staging = false
		}
		return nil
	}
	return fmt.Errorf("fake instance does not understand %q", cmd)
}

// copied runs the onCopy hook of the job whose staging dir is dir, without
// the world lock (Run holds it).
func (i *fakeInstance) copied(dir string) {
	if j := i.jobs[filepath.Base(dir)]; j != nil && j.onCopy != nil {
		i.w.mu.Unlock()
		j.onCopy()
		i.w.mu.Lock()
	}
}

func (i *fakeInstance) runScript(cmd string, stdout io.Writer) error {
	m := scriptCmd.FindStringSubmatch(cmd)
	env := map[string]string{}
	for _, kv := range envAssign.FindAllStringSubmatch(m[1], -1) {
		env[kv[1]] = kv[2]
	}
	jobName, script := m[2], m[3]
	j := i.jobs[jobName]
	i.w.events = append(i.w.events, event{Instance: i.name(), Job: jobName, Script: script, Env: env})
	if err := j.fail[script]; err != nil {
		return &remote.ExitError{Code: 1, Stderr: err.Error()}
	}
	dir := strings.TrimSuffix(env["BBR_ARTIFACT_DIRECTORY"], "/")
	switch script {
	case "metadata":
		fmt.Fprint(stdout, j.metadata)
	case "backup":
		for p, c := range j.data {
			i.files[dir]["./"+p] = c
		}
	case "restore":
		j.restored = map[string]string{}
		for p, c := range i.files[dir] {
			j.restored[strings.TrimPrefix(p, "./")] = c
		}
	}
	return nil
}

func (i *fakeInstance) Close() error {
	i.w.mu.Lock()
	defer i.w.mu.Unlock()
	i.closed = true
	return nil
}

func writeTar(w io.Writer, files map[string]string) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return err
	}
	for _, p := range sortedPaths(files) {
		if dir := path.Dir(p); dir != "." {
			_ = tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		}
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[p]))}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, files[p]); err != nil {
			return err
		}
	}
	return tw.Close()
}

func readTar(r io.Reader) (map[string]string, error) {
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			var b bytes.Buffer
			if _, err := io.Copy(&b, tr); err != nil {
				return nil, err
			}
			files[h.Name] = b.String()
		}
	}
}

func sortedPaths(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
