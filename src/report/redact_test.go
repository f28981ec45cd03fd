package report_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/remote"
	"github.com/bbr-release/bbr/src/report"
)

var _ = Describe("a failed script's output in reports and posts", func() {
	// What `set -x` in a release's lock script prints before it fails, as
	// the orchestrator wraps it: 64 KiB at most, the password in it.
	scriptFailure := func() error {
		var stderr strings.Builder
		for i := 0; i < 200; i++ {
			fmt.Fprintf(&stderr, "+ echo 'line %d of noise %s'\n", i, strings.Repeat("x", 300))
		}
		stderr.WriteString("+ export PGPASSWORD=hunter2\n+ psql -h 10.0.0.9 -U admin -c 'select pg_start_backup()'\n" +
			"psql: error: FATAL: password authentication failed for user \"admin\"\n")
		exit := &remote.ExitError{Code: 3, Stderr: stderr.String()}
		return errors.Join(fmt.Errorf("Error attempting to run pre-backup-lock for job pg on db/0: %w", exit),
			errors.New("Error attempting to run pre-backup-lock for job redis on redis/1: exit code 1"))
	}

	It("keeps what failed, where and the exit code, and only the last lines of its output, redacted, in a 0600 report", func() {
		path := filepath.Join(GinkgoT().TempDir(), "report.json")
		rec := report.NewRecorder(path, "", report.OpBackup, "deployment backup", "1.2.3", t0)
		Expect(rec.Add(report.Attempt(report.KindDeployment, "cf", t0, t0.Add(time.Minute), scriptFailure()))).To(Succeed())
		raw := string(must(os.ReadFile(path)))
		Expect(raw).NotTo(ContainSubstring("hunter2"))
		Expect(must(os.Stat(path)).Mode().Perm()).To(Equal(os.FileMode(0o600)))
		var run report.Run
		Expect(json.Unmarshal([]byte(raw), &run)).To(Succeed())
		lines := run.Deployments[0].Errors
		Expect(lines).To(Equal([]string{
			"Error attempting to run pre-backup-lock for job pg on db/0: exit code 3; the last 5 line(s) of its stderr, redacted (the error log has it all):",
			"| + echo 'line 198 of noise " + strings.Repeat("x", 200-len("+ echo 'line 198 of noise ")-1) + "…",
			"| + echo 'line 199 of noise " + strings.Repeat("x", 200-len("+ echo 'line 199 of noise ")-1) + "…",
			"| + export PGPASSWORD=[REDACTED]",
			"| + psql -h 10.0.0.9 -U admin -c 'select pg_start_backup()'",
			`| psql: error: FATAL: password authentication failed for user "admin"`,
			"Error attempting to run pre-backup-lock for job redis on redis/1: exit code 1",
		}))
		for _, l := range lines[1:6] {
			Expect(utf8.RuneCountInString(l)).To(BeNumerically("<=", 200+len(report.OutputPrefix)))
		}
	})

	It("shortens the output of a session that ended without an exit status as a script's", func() {
		var stderr strings.Builder
		for i := 0; i < 100; i++ {
			fmt.Fprintf(&stderr, "+ export PGPASSWORD=hunter2 # %d\n", i)
		}
		lost := fmt.Errorf("the ssh session to 10.0.0.9:22 ended without an exit status: did the network or the instance fail?: %w",
			&remote.ExitError{Code: remote.NoExitStatus, Stderr: stderr.String()})
		d := report.Attempt(report.KindDeployment, "cf", t0, t0.Add(time.Minute), fmt.Errorf("Error attempting to run backup for job pg on db/0: %w", lost))
		Expect(d.Errors).To(HaveLen(6))
		Expect(d.Errors[0]).To(HaveSuffix("did the network or the instance fail?: no exit status; the last 5 line(s) of its stderr, redacted (the error log has it all):"))
		Expect(strings.Join(d.Errors, "\n")).NotTo(ContainSubstring("hunter2"))
	})

	It("posts it to the webhook without the secret, with the exit code and the job and instance", func() {
		var body string
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body = string(must(io.ReadAll(r.Body)))
		}))
		defer server.Close()
		hook := report.Webhook{URL: server.URL, Attempts: 1}
		Expect(hook.Notify(context.Background(), report.Attempt(report.KindDeployment, "cf", t0, t0.Add(time.Minute), scriptFailure()))).To(Succeed())
		Expect(body).NotTo(ContainSubstring("hunter2"))
		var msg struct {
			Text string            `json:"text"`
			BBR  report.Deployment `json:"bbr"`
		}
		Expect(json.Unmarshal([]byte(body), &msg)).To(Succeed())
		Expect(msg.Text).To(HaveSuffix("FAILED after 1m0s: Error attempting to run pre-backup-lock for job redis on redis/1: exit code 1"))
		Expect(msg.BBR.Errors).To(ContainElement(HavePrefix("Error attempting to run pre-backup-lock for job pg on db/0: exit code 3;")))
		Expect(msg.BBR.Errors).To(HaveLen(7))
	})

	DescribeTable("Redact replaces what looks like a secret's value",
		func(line, want string) { Expect(report.Redact(line)).To(Equal(want)) },
		Entry("KEY=value", "+ PGPASSWORD=hunter2 pg_dump db", "+ PGPASSWORD=[REDACTED] pg_dump db"),
		Entry("export, quoted", `export DB_Secret_Key="a b"; next`, "export DB_Secret_Key=[REDACTED]; next"),
		Entry("set -x quoting", "+ export 'API_TOKEN=abc'", "+ export 'API_TOKEN=[REDACTED]'"),
		Entry("--flag=value", "mysql --password=hunter2 -u root", "mysql --password=[REDACTED] -u root"),
		Entry("--flag value", "mc alias set s3 --secret-key hunter2 --insecure", "mc alias set s3 --secret-key [REDACTED] --insecure"),
		Entry("YAML", "  db_passwd: hunter2", "  db_passwd: [REDACTED]"),
		Entry("YAML list item", "- credentials: 'hunter2'", "- credentials: [REDACTED]"),
		Entry("JSON", `{"user":"a","private_key":"-----BEGIN x","n":1}`, `{"user":"a","private_key":[REDACTED],"n":1}`),
		Entry("URL", "connecting to postgres://admin:hunter2@10.0.0.9/db", "connecting to postgres://admin:[REDACTED]@10.0.0.9/db"),
		Entry("bearer", "curl -H 'Authorization: Bearer eyJhbGc'", "curl -H 'Authorization: Bearer [REDACTED]'"),
		Entry("an age identity", "echo AGE-SECRET-KEY-1QQPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", "echo AGE-SECRET-KEY-1[REDACTED]"),
		Entry("MYSQL_PWD", "export MYSQL_PWD=hunter2", "export MYSQL_PWD=[REDACTED]"),
		Entry("curl -v's basic auth", "> Authorization: Basic dXNlcjpodW50ZXIy", "> Authorization: [REDACTED]"),
		Entry("curl -u", "curl -u admin:hunter2 https://x", "curl -u admin:[REDACTED] https://x"),
		Entry("a URL password with a slash", "postgres://u:hun/ter2@db/x", "postgres://u:[REDACTED]@db/x"),
		Entry("mysql -p", "mysql -u root -phunter2 db", "mysql -u root -p[REDACTED] db"),
		Entry("an error message stays", `psql: error: FATAL: password authentication failed for user "admin"`, `psql: error: FATAL: password authentication failed for user "admin"`),
		Entry("a plain assignment stays", "+ PGHOST=10.0.0.9", "+ PGHOST=10.0.0.9"),
	)
})
