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
	"maps"
	"path"
	"sort"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/boshname"
	"github.com/bbr-release/bbr/src/instance"
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
	// setUpErr fails a group's set-up after the user is made, as a task
	// that fails late does; setUpHosts, when set, caps the hosts returned.
	setUpErr   map[string]error
	setUpHosts map[string]int
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
	// stagingAnswerErr is what claiming or checking the staging root
	// fails with.
	stagingAnswerErr error
	// userCheckErr is what asking whether a user is logged in fails with.
	userCheckErr error
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
	streamErr error
	// uploadErr fails the restore upload on the instance's side, as tar
	// there would on a full disk, without reading all of it.
	uploadErr  error
	onChecksum func(context.Context)
	// onUnlock runs in post-backup-unlock like onChecksum; the script
	// fails if the context has ended by then.
	onUnlock func(context.Context)
}

func newWorld(name string) *world {
	return &world{name: name, manifest: "name: " + name + "\n", dialErr: map[string]error{}, users: map[string]bool{},
		setUpErr: map[string]error{}, setUpHosts: map[string]int{}}
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

func (w *world) VMs(_ context.Context, dep string) ([]orchestrator.VM, error) {
	if w.vmsErr != nil {
		return nil, w.vmsErr
	}
	if dep != w.name {
		return nil, fmt.Errorf("Deployment '%s' doesn't exist", dep)
	}
	var vms []orchestrator.VM
	for _, i := range w.instances {
		vms = append(vms, orchestrator.VM{Group: i.group, ID: i.id, Index: i.index, Bootstrap: i.boot, IPs: []string{"10.0.0.1"}})
	}
	return vms, nil
}

func (w *world) Manifest(context.Context, string) (string, error) { return w.manifest, nil }

func (w *world) SetUpSSH(ctx context.Context, _, group, user, key string) ([]orchestrator.SSHHost, error) {
	if w.onSetUp != nil {
		w.onSetUp()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setUps = append(w.setUps, group)
	w.users[user] = true
	if err := w.setUpErr[group]; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err // abandoned: the Director makes the user all the same
	}
	var hosts []orchestrator.SSHHost
	for _, i := range w.instances {
		if i.group == group {
			hosts = append(hosts, orchestrator.SSHHost{Group: group, IndexOrID: i.id, IP: i.id, HostPublicKey: "key"})
		}
	}
	if n, ok := w.setUpHosts[group]; ok {
		hosts = hosts[:n]
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

// finder finds the world's deployment through its Director.
func (w *world) finder() orchestrator.Finder {
	return orchestrator.DirectorFinder{Director: w, Dial: w.dial}
}

func (w *world) dial(_ context.Context, host orchestrator.SSHHost, _ string, _ ssh.Signer) (orchestrator.InstanceConn, error) {
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

// Instance fake: the protocol's calls on files kept in memory.

const stagingRoot = instance.DefaultStagingRoot

func (i *fakeInstance) name() string { return fmt.Sprintf("%s/%d", i.group, i.index) }

// enter takes the world lock for one call, failing it as an instance
// would: a cancelled call, or a Windows VM answering anything but %OS%.
func (i *fakeInstance) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	i.w.mu.Lock()
	if i.windows {
		i.w.mu.Unlock()
		return &remote.ExitError{Code: 1, Stderr: "'sudo' is not recognized as an internal or external command"}
	}
	return nil
}

// unlocked runs hook without the world lock (the calls hold it).
func (i *fakeInstance) unlocked(hook func()) {
	i.w.mu.Unlock()
	defer i.w.mu.Lock()
	hook()
}

func (i *fakeInstance) IsWindows(ctx context.Context) (bool, error) {
	return i.windows, ctx.Err()
}

func (i *fakeInstance) FindScripts(ctx context.Context) (instance.Scripts, error) {
	if err := i.enter(ctx); err != nil {
		return nil, err
	}
	defer i.w.mu.Unlock()
	scripts := instance.Scripts{}
	for name, j := range i.jobs {
		if err := boshname.Check("job", name); err != nil {
			return nil, err
		}
		scripts[name] = maps.Clone(j.scripts)
	}
	return scripts, nil
}

func (i *fakeInstance) RunScript(ctx context.Context, run instance.ScriptRun) error {
	if err := i.enter(ctx); err != nil {
		return err
	}
	defer i.w.mu.Unlock()
	j := i.jobs[run.Job]
	hook := map[string]func(){"restore": j.onRestore, "pre-backup-lock": j.onLock}[run.Script]
	if hook != nil {
		i.unlocked(hook)
	}
	if j.onUnlock != nil && run.Script == "post-backup-unlock" {
		i.unlocked(func() { j.onUnlock(ctx) })
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	i.w.events = append(i.w.events, event{Instance: i.name(), Job: run.Job, Script: run.Script, Env: run.Env})
	if err := j.fail[run.Script]; err != nil {
		return &remote.ExitError{Code: 1, Stderr: err.Error()}
	}
	dir := strings.TrimSuffix(run.Env["BBR_ARTIFACT_DIRECTORY"], "/")
	switch run.Script {
	case "metadata":
		fmt.Fprint(run.Stdout, j.metadata)
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

func (i *fakeInstance) ClaimStaging(ctx context.Context, owner string) (bool, *instance.Holder, error) {
	if err := i.enter(ctx); err != nil {
		return false, nil, err
	}
	defer i.w.mu.Unlock()
	if i.stagingAnswerErr != nil {
		return false, nil, i.stagingAnswerErr
	}
	if i.staging {
		return false, &instance.Holder{Owner: i.stagingOwner}, nil
	}
	i.staging, i.stagingOwner = true, owner
	return true, nil, nil
}

func (i *fakeInstance) CheckStaging(ctx context.Context) (*instance.Holder, error) {
	if err := i.enter(ctx); err != nil {
		return nil, err
	}
	defer i.w.mu.Unlock()
	if i.stagingAnswerErr != nil {
		return nil, i.stagingAnswerErr
	}
	if i.staging {
		return &instance.Holder{Owner: i.stagingOwner}, nil
	}
	return nil, nil
}

func (i *fakeInstance) UserActive(ctx context.Context, user string) (bool, error) {
	if err := i.enter(ctx); err != nil {
		return false, err
	}
	defer i.w.mu.Unlock()
	if i.userCheckErr != nil {
		return false, i.userCheckErr
	}
	return i.w.users[user], nil
}

func (i *fakeInstance) StagingRoot() string           { return stagingRoot }
func (i *fakeInstance) StagingDir(name string) string { return stagingRoot + "/" + name }

func (i *fakeInstance) MakeStagingDir(ctx context.Context, name string) error {
	if err := i.enter(ctx); err != nil {
		return err
	}
	defer i.w.mu.Unlock()
	i.staging = true
	if i.files[i.StagingDir(name)] == nil {
		i.files[i.StagingDir(name)] = map[string]string{}
	}
	return nil
}

func (i *fakeInstance) Checksums(ctx context.Context, name string) (artifact.Checksums, error) {
	if j := i.jobs[name]; j != nil && j.onChecksum != nil {
		j.onChecksum(ctx) // even when ctx has ended: the hook sees that
	}
	if err := i.enter(ctx); err != nil {
		return nil, err
	}
	defer i.w.mu.Unlock()
	sums := artifact.Checksums{}
	for p, c := range i.files[i.StagingDir(name)] {
		sum := sha256.Sum256([]byte(c))
		sums[p] = hex.EncodeToString(sum[:])
	}
	return sums, nil
}

func (i *fakeInstance) StreamOut(ctx context.Context, name string, w io.Writer) error {
	if err := i.enter(ctx); err != nil {
		return err
	}
	defer i.w.mu.Unlock()
	if j := i.jobs[name]; j != nil && j.streamErr != nil {
		return j.streamErr
	}
	if err := writeTar(w, i.files[i.StagingDir(name)]); err != nil {
		return err
	}
	i.copied(name)
	return nil
}

func (i *fakeInstance) StreamIn(ctx context.Context, name string, r io.Reader) error {
	if err := i.enter(ctx); err != nil {
		return err
	}
	defer i.w.mu.Unlock()
	if j := i.jobs[name]; j != nil && j.uploadErr != nil {
		return j.uploadErr
	}
	files, err := readTar(r)
	if err != nil {
		return &remote.ExitError{Code: 2, Stderr: err.Error()}
	}
	i.staging = true
	i.files[i.StagingDir(name)] = files
	i.copied(name)
	return nil
}

func (i *fakeInstance) RemoveStagingDir(ctx context.Context, name string) error {
	if err := i.enter(ctx); err != nil {
		return err
	}
	defer i.w.mu.Unlock()
	delete(i.files, i.StagingDir(name))
	return nil
}

func (i *fakeInstance) RemoveStaging(ctx context.Context) error {
	if err := i.enter(ctx); err != nil {
		return err
	}
	defer i.w.mu.Unlock()
	clear(i.files)
	i.staging = false
	return nil
}

// copied runs the onCopy hook of the job whose staging dir is name.
func (i *fakeInstance) copied(name string) {
	if j := i.jobs[name]; j != nil && j.onCopy != nil {
		i.unlocked(j.onCopy)
	}
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
