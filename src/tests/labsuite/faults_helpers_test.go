package labsuite_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/model"
)

// The fault deployments log every script run, one line each, to
// /var/vcap/store/log/<job>.log ("<script> after_success=<value>"), and
// fail a script while /var/vcap/store/faults/<job>-<script> exists on the
// instance. Other switches there:
//
//	<job>-metadata with content "yaml"  the metadata script prints bad YAML
//	<job>-big                           the backup writes 4 MiB of random data
//	<job>-<script>-hold                 the script waits (up to 60 s) while it
//	                                    exists, after touching <job>-<script>-held
//	<job>-large                         the backup writes a 512 MiB sparse file
//	<job>-huge                          the backup writes an 8 GiB sparse file
var faultScripts = []string{"pre-backup-lock", "backup", "post-backup-unlock",
	"pre-restore-lock", "restore", "post-restore-unlock", "metadata"}

// faultScript is the body of one script of a fault deployment job.
func faultScript(job, script string) string {
	store := "/var/vcap/store"
	flag := fmt.Sprintf("%s/faults/%s-%s", store, job, script)
	var b strings.Builder
	fmt.Fprintf(&b, "mkdir -p %s/log\n", store)
	fmt.Fprintf(&b, "echo \"%s after_success=${BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL:-}\" >> %s/log/%s.log\n", script, store, job)
	if script == "metadata" {
		fmt.Fprintf(&b, "if [ \"$(cat %[1]s 2>/dev/null)\" = yaml ]; then echo 'backup_should_be_locked_before: [unclosed'; exit 0; fi\n", flag)
	}
	fmt.Fprintf(&b, "if [ -e %[1]s-hold ]; then touch %[1]s-held; for i in $(seq 600); do [ -e %[1]s-hold ] || break; sleep 0.1; done; fi\n", flag)
	fmt.Fprintf(&b, "if [ -e %s ]; then echo '%s %s: injected failure' >&2; exit 3; fi\n", flag, job, script)
	faults := store + "/faults/" + job
	switch script {
	case "backup":
		fmt.Fprintf(&b, "echo '%s data' > \"${BBR_ARTIFACT_DIRECTORY}data\"\n", job)
		fmt.Fprintf(&b, "if [ -e %s-big ]; then head -c 4194304 /dev/urandom > \"${BBR_ARTIFACT_DIRECTORY}big\"; fi\n", faults)
		fmt.Fprintf(&b, "if [ -e %s-large ]; then truncate -s 512M \"${BBR_ARTIFACT_DIRECTORY}large\"; fi\n", faults)
		fmt.Fprintf(&b, "if [ -e %s-huge ]; then truncate -s 8G \"${BBR_ARTIFACT_DIRECTORY}huge\"; fi\n", faults)
	case "restore":
		fmt.Fprintf(&b, "cp \"${BBR_ARTIFACT_DIRECTORY}data\" %s/restored-%s\n", store, job)
	}
	return b.String()
}

// writeFaultDeployment writes a deployment of one instance group with the
// given number of instances, each running every job of release "faults".
func writeFaultDeployment(name string, instances int, jobs ...string) string {
	dir := filepath.Join(GinkgoT().TempDir(), name)
	var specs []string
	for _, job := range jobs {
		specs = append(specs, fmt.Sprintf("{name: %s, release: faults}", job))
		for _, script := range faultScripts {
			path := filepath.Join(dir, "releases", "faults", "jobs", job, "bin", "bbr", script)
			Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
			Expect(os.WriteFile(path, []byte("#!/bin/bash\nset -e\n"+faultScript(job, script)), 0o755)).To(Succeed())
		}
	}
	manifest := fmt.Sprintf("name: %s\nreleases: [{name: faults, version: \"1\"}]\ninstance_groups:\n- {name: worker, instances: %d, azs: [z1], jobs: [%s]}\n",
		name, instances, strings.Join(specs, ", "))
	Expect(os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte(manifest), 0o644)).To(Succeed())
	return dir
}

type modelInstance = model.Instance

// setFault creates (content != "") or removes the switch file on inst.
func setFault(inst model.Instance, name, content string) {
	setSwitch(filepath.Join(inst.Root, "store", "faults", name), content)
}

// setSwitch writes a fault switch file (content != "") or removes it.
func setSwitch(path, content string) {
	if content == "" {
		ExpectWithOffset(2, os.RemoveAll(path)).To(Succeed())
		return
	}
	ExpectWithOffset(2, os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
	ExpectWithOffset(2, os.WriteFile(path, []byte(content), 0o644)).To(Succeed())
}

// resetFaults removes every switch and script log of every instance of
// the deployment.
func resetFaults(deployment string) {
	d, ok := lab.Find(deployment)
	ExpectWithOffset(1, ok).To(BeTrue())
	for _, i := range d.Instances {
		for _, sub := range []string{"faults", "log"} {
			ExpectWithOffset(1, os.RemoveAll(filepath.Join(i.Root, "store", sub))).To(Succeed())
		}
	}
}

// scriptLog is what the job's scripts logged on inst.
func scriptLog(inst model.Instance, job string) string {
	raw, err := os.ReadFile(filepath.Join(inst.Root, "store", "log", job+".log"))
	if os.IsNotExist(err) {
		return ""
	}
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return string(raw)
}

// setDirectorFault makes the lab Director misbehave on "ssh-setup" or
// "ssh-cleanup" ("500" or "task-error"; "" removes the fault).
func setDirectorFault(name, content string) {
	setSwitch(filepath.Join(labDir, "faults", name), content)
}

// directorCleanUpSSH asks the lab Director to remove every bosh_ user on
// the deployment's instances, as an operator would after a failed cleanup.
func directorCleanUpSSH(deployment string) {
	pem, err := os.ReadFile(lab.Director.CACertPath)
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(pem)).To(BeTrue())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	body, _ := json.Marshal(map[string]any{
		"command": "cleanup", "deployment_name": deployment,
		"target": map[string]any{"job": "worker"},
		"params": map[string]any{"user_regex": "^bosh_"},
	})
	req, err := http.NewRequest("POST", "https://"+lab.Director.Address+"/deployments/"+deployment+"/ssh", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth(lab.Director.Client, lab.Director.ClientSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	Eventually(labUsers).Should(BeEmpty())
}

var goodArtifactName = regexp.MustCompile(`_\d{8}T\d{6}Z$`)

// artifactsIn lists the artifact directories in dir: good ones (the
// final name) and the others (.failed, .in-progress).
func artifactsIn(dir string) (good, other []string) {
	entries, err := os.ReadDir(dir)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if goodArtifactName.MatchString(e.Name()) {
			good = append(good, e.Name())
		} else {
			other = append(other, e.Name())
		}
	}
	return good, other
}

// killNamespace SIGKILLs the processes in inst's mount namespace: first
// every sshd (the fault), then whatever they left (the VM is gone). It
// returns how many sshd processes it killed.
func killNamespace(inst model.Instance) int {
	sshds := 0
	for _, onlySSHD := range []bool{true, false} {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			if ns, err := os.Readlink(filepath.Join(d, "ns", "mnt")); err != nil || ns != inst.MountNS {
				continue
			}
			raw, _ := os.ReadFile(filepath.Join(d, "cmdline"))
			isSSHD := strings.HasPrefix(string(raw), "sshd") || strings.HasPrefix(string(raw), "/usr/sbin/sshd")
			if onlySSHD && !isSSHD {
				continue
			}
			var pid int
			if _, err := fmt.Sscanf(filepath.Base(d), "%d", &pid); err == nil {
				if syscall.Kill(pid, syscall.SIGKILL) == nil && isSSHD {
					sshds++
				}
			}
		}
	}
	return sshds
}

// fileSize is the size of the first file matching glob, or 0.
func fileSize(glob string) int64 {
	matches, _ := filepath.Glob(glob)
	for _, m := range matches {
		if info, err := os.Stat(m); err == nil {
			return info.Size()
		}
	}
	return 0
}
