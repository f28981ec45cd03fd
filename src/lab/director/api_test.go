package director_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/lab/director"
)

// These specs look at the wire: status codes, headers and bodies that
// bosh-cli's parsing would hide.

type response struct {
	Status int
	Header http.Header
	Body   string
}

// request sends method path with body and header lines ("Name: value"),
// authenticated as admin with basic auth unless a header sets Authorization.
func (d labDirector) request(method, path, body string, headers ...string) response {
	req, err := http.NewRequest(method, d.URL+path, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth(client, secret)
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	resp, err := d.httpClient().Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return response{resp.StatusCode, resp.Header, string(raw)}
}

// token gets an access token from the lab's UAA with a form-encoded body.
func (d labDirector) token(form url.Values) response {
	resp, err := d.httpClient().PostForm(d.UAAURL+"/oauth/token", form)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return response{resp.StatusCode, resp.Header, string(raw)}
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func decode[T any](body string) T {
	var v T
	ExpectWithOffset(1, json.Unmarshal([]byte(body), &v)).To(Succeed(), body)
	return v
}

const setupBody = `{"command":"setup","deployment_name":"sample","target":{"job":"redis","indexes":["0"],"ids":["0"]},
	"params":{"user":"bbr-1","public_key":"` + userKey + `","password":"x"}}`

var _ = Describe("the lab Director API", func() {
	var (
		agent *fakeAgent
		lab   labDirector
	)

	BeforeEach(func() {
		agent = &fakeAgent{}
		lab = startDirector("basic", agent)
	})

	Describe("tasks", func() {
		It("redirects SSH setup to its task, whose result is the Director's JSON", func() {
			resp := lab.request("POST", "/deployments/sample/ssh", setupBody, "Content-Type: application/json", "X-Bosh-Context-Id: ctx-7")
			Expect(resp.Status).To(Equal(http.StatusFound))
			Expect(resp.Header.Get("Location")).To(Equal("/tasks/1"))

			task := decode[map[string]any](lab.request("GET", "/tasks/1", "").Body)
			Expect(task).To(HaveKeyWithValue("id", 1.0))
			Expect(task).To(HaveKeyWithValue("state", "done"))
			Expect(task).To(HaveKeyWithValue("description", "ssh: setup:redis/0"))
			Expect(task).To(HaveKeyWithValue("user", "admin"))
			Expect(task).To(HaveKeyWithValue("deployment", "sample"))
			Expect(task).To(HaveKeyWithValue("context_id", "ctx-7"))
			Expect(task).To(HaveKey("timestamp"))
			Expect(task["started_at"]).To(BeNumerically(">", 0))

			result := lab.request("GET", "/tasks/1/output?type=result", "")
			Expect(result.Status).To(Equal(http.StatusOK))
			Expect(result.Body).To(MatchJSON(`[{"command":"setup","status":"success","ip":"127.77.1.10",
				"host_public_key":"` + hostKey + `","id":"id-r0","index":0,"job":"redis","gateway_user":"","gateway_host":""}]`))
			Expect(agent.SetUps()).To(Equal([]agentCall{{Deployment: "sample", Instance: "redis/id-r0", User: "bbr-1", Key: userKey}}))

			debug := lab.request("GET", "/tasks/1/output?type=debug", "")
			Expect(debug.Body).To(ContainSubstring("ssh setup on redis/id-r0 succeeded"))
		})

		It("answers vms?format=full with one JSON object per line, and vms alone with an array", func() {
			resp := lab.request("GET", "/deployments/sample/vms?format=full", "")
			Expect(resp.Status).To(Equal(http.StatusFound))
			lines := strings.Split(strings.TrimSpace(lab.request("GET", resp.Header.Get("Location")+"/output?type=result", "").Body), "\n")
			Expect(lines).To(HaveLen(3))
			vm := decode[map[string]any](lines[2])
			for _, key := range []string{"agent_id", "job_name", "id", "index", "bootstrap", "job_state", "process_state", "ips", "az",
				"vm_cid", "vm_type", "disk_cid", "disk_cids", "state", "processes", "vitals", "resurrection_paused", "active", "ignore", "vm_created_at"} {
				Expect(vm).To(HaveKey(key))
			}
			Expect(vm).To(HaveKeyWithValue("job_name", "api"))
			Expect(vm).To(HaveKeyWithValue("job_state", "running"))
			Expect(vm).To(HaveKeyWithValue("state", "started"))

			brief := lab.request("GET", "/deployments/sample/vms", "")
			Expect(brief.Status).To(Equal(http.StatusOK))
			vms := decode[[]map[string]any](brief.Body)
			Expect(vms).To(HaveLen(3))
			Expect(vms[0]).To(HaveKeyWithValue("job", "redis"))
			Expect(vms[2]).To(HaveKeyWithValue("cid", vm["vm_cid"]))
			Expect(vms[2]).To(HaveKeyWithValue("active", true))
		})

		It("serves event output by byte ranges, with 416 past the end", func() {
			agent.fail = map[string]error{"*": errors.New("useradd: boom")}
			Expect(lab.request("POST", "/deployments/sample/ssh", setupBody).Status).To(Equal(http.StatusFound))
			task := decode[map[string]any](lab.request("GET", "/tasks/1", "").Body)
			Expect(task).To(HaveKeyWithValue("state", "error"))
			Expect(task["result"]).To(ContainSubstring("useradd: boom"))

			full := lab.request("GET", "/tasks/1/output?type=event", "")
			Expect(full.Status).To(Equal(http.StatusOK))
			event := decode[map[string]any](strings.TrimSpace(full.Body))
			Expect(event).To(HaveKey("time"))
			Expect(event["error"]).To(HaveKeyWithValue("message", ContainSubstring("redis/id-r0: useradd: boom")))

			all := lab.request("GET", "/tasks/1/output?type=event", "", "Range: bytes=0-")
			Expect(all.Status).To(Equal(http.StatusPartialContent))
			Expect(all.Body).To(Equal(full.Body))
			rest := lab.request("GET", "/tasks/1/output?type=event", "", "Range: bytes=5-")
			Expect(rest.Status).To(Equal(http.StatusPartialContent))
			Expect(rest.Body).To(Equal(full.Body[5:]))
			Expect(rest.Header.Get("Content-Range")).To(MatchRegexp(`^bytes 5-\d+/%d$`, len(full.Body)))
			past := lab.request("GET", "/tasks/1/output?type=event", "", "Range: bytes="+strconv.Itoa(len(full.Body))+"-")
			Expect(past.Status).To(Equal(http.StatusRequestedRangeNotSatisfiable))
		})

		It("has no events for a task that succeeded, so the first range is past the end", func() {
			lab.request("GET", "/deployments/other/vms?format=full", "")
			Expect(lab.request("GET", "/tasks/1/output?type=event", "", "Range: bytes=0-").Status).To(Equal(http.StatusRequestedRangeNotSatisfiable))
		})

		It("goes from processing to done while the agent works", func() {
			agent.block = make(chan struct{})
			lab = startDirector("basic", agent, func(c *director.Config) { c.RedirectAtOnce = true })
			Expect(lab.request("POST", "/deployments/sample/ssh", setupBody).Status).To(Equal(http.StatusFound))
			state := func() any { return decode[map[string]any](lab.request("GET", "/tasks/1", "").Body)["state"] }
			// Queued until the worker picks it up, then processing while
			// the agent is blocked.
			Eventually(state).Should(Equal("processing"))
			Expect(decode[[]map[string]any](lab.request("GET", "/tasks?state=processing,queued", "").Body)).To(HaveLen(1))
			close(agent.block)
			Eventually(state).Should(Equal("done"))
			Expect(decode[[]map[string]any](lab.request("GET", "/tasks?state=processing,queued", "").Body)).To(BeEmpty())
		})

		It("filters the task list by deployment and limit, newest first", func() {
			lab.request("GET", "/deployments/sample/vms?format=full", "")
			lab.request("GET", "/deployments/other/vms?format=full", "")
			lab.request("GET", "/deployments/sample/instances?format=full", "")
			ids := func(path string) []float64 {
				var out []float64
				for _, t := range decode[[]map[string]any](lab.request("GET", path, "").Body) {
					out = append(out, t["id"].(float64))
				}
				return out
			}
			Expect(ids("/tasks")).To(Equal([]float64{3, 2, 1}))
			Expect(ids("/tasks?deployment=sample")).To(Equal([]float64{3, 1}))
			Expect(ids("/tasks?limit=1&verbose=1")).To(Equal([]float64{3}))
		})

		It("answers 404 for an unknown task and 400 for an unknown output type", func() {
			for _, path := range []string{"/tasks/9", "/tasks/x", "/tasks/9/output?type=result"} {
				resp := lab.request("GET", path, "")
				Expect(resp.Status).To(Equal(http.StatusNotFound), path)
				Expect(resp.Body).To(MatchJSON(`{"code":10001,"description":"Task ` + strings.Split(path, "/")[2] + ` not found"}`))
			}
			lab.request("GET", "/deployments/other/vms?format=full", "")
			Expect(lab.request("GET", "/tasks/1/output?type=bogus", "").Status).To(Equal(http.StatusBadRequest))
		})
	})

	Describe("SSH requests", func() {
		It("refuses a body that is not an SSH request", func() {
			Expect(lab.request("POST", "/deployments/sample/ssh", "{").Status).To(Equal(http.StatusBadRequest))
			resp := lab.request("POST", "/deployments/sample/ssh", `{"command":"reboot"}`)
			Expect(resp.Status).To(Equal(http.StatusBadRequest))
			Expect(resp.Body).To(ContainSubstring("Unknown ssh command 'reboot'"))
		})

		It("fails a cleanup without a user regex rather than remove every lab user", func() {
			lab.request("POST", "/deployments/sample/ssh", `{"command":"cleanup","target":{"job":"redis"},"params":{}}`)
			task := decode[map[string]any](lab.request("GET", "/tasks/1", "").Body)
			Expect(task).To(HaveKeyWithValue("state", "error"))
			Expect(task).To(HaveKeyWithValue("result", "ssh cleanup needs param user_regex"))
			Expect(agent.CleanUps()).To(BeEmpty())
		})

		It("names the missing instance group in the task's error", func() {
			lab.request("POST", "/deployments/sample/ssh", `{"command":"setup","target":{"job":"web"},"params":{"user":"u","public_key":"k"}}`)
			task := decode[map[string]any](lab.request("GET", "/tasks/1", "").Body)
			Expect(task).To(HaveKeyWithValue("result", "Instance group 'web' doesn't exist in deployment 'sample'"))
		})
	})

	Describe("authentication", func() {
		It("answers 401 like the Director, with a plain-text reason", func() {
			resp := lab.request("GET", "/deployments", "", "Authorization: Basic "+basic(client, "wrong"))
			Expect(resp.Status).To(Equal(http.StatusUnauthorized))
			Expect(resp.Body).To(Equal("Not authorized: '/deployments'\n"))
			Expect(resp.Header.Get("WWW-Authenticate")).To(Equal(`Basic realm="BOSH Director"`))
			Expect(lab.request("GET", "/tasks", "", "Authorization: ").Status).To(Equal(http.StatusUnauthorized))
		})

		It("answers /info to anyone, without a user for wrong credentials", func() {
			resp := lab.request("GET", "/info", "", "Authorization: Basic "+basic(client, "wrong"))
			Expect(resp.Status).To(Equal(http.StatusOK))
			Expect(decode[map[string]any](resp.Body)).To(HaveKeyWithValue("user", BeNil()))
			Expect(decode[map[string]any](resp.Body)).To(HaveKeyWithValue("user_authentication", map[string]any{"type": "basic", "options": map[string]any{}}))
		})

		It("answers 404 with the Director's error for an unknown deployment", func() {
			resp := lab.request("GET", "/deployments/nope", "")
			Expect(resp.Status).To(Equal(http.StatusNotFound))
			Expect(resp.Body).To(MatchJSON(`{"code":70000,"description":"Deployment 'nope' doesn't exist"}`))
		})

		Context("in uaa mode", func() {
			BeforeEach(func() { lab = startDirector("uaa", agent) })

			It("accepts tokens its UAA issued, with the client in form fields", func() {
				resp := lab.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}})
				Expect(resp.Status).To(Equal(http.StatusOK))
				body := decode[map[string]any](resp.Body)
				Expect(body).To(HaveKeyWithValue("token_type", "bearer"))
				Expect(body).To(HaveKeyWithValue("scope", "bosh.admin"))
				Expect(body).To(HaveKeyWithValue("expires_in", 3600.0))
				Expect(body).To(HaveKeyWithValue("jti", MatchRegexp(`^[0-9a-f]{32}$`)))
				token := body["access_token"].(string)

				Expect(lab.request("GET", "/deployments", "", "Authorization: bearer "+token).Status).To(Equal(http.StatusOK))
				info := decode[map[string]any](lab.request("GET", "/info", "", "Authorization: Bearer "+token).Body)
				Expect(info).To(HaveKeyWithValue("user", client))
			})

			It("refuses basic auth, other servers' tokens and tampered tokens", func() {
				Expect(lab.request("GET", "/deployments", "").Status).To(Equal(http.StatusUnauthorized))

				other := startDirector("uaa", agent)
				foreign := decode[map[string]any](other.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}}).Body)["access_token"].(string)
				Expect(lab.request("GET", "/deployments", "", "Authorization: bearer "+foreign).Status).To(Equal(http.StatusUnauthorized))

				own := decode[map[string]any](lab.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}}).Body)["access_token"].(string)
				parts := strings.Split(own, ".")
				tampered := parts[0] + "." + parts[1] + "x." + parts[2]
				Expect(lab.request("GET", "/deployments", "", "Authorization: bearer "+tampered).Status).To(Equal(http.StatusUnauthorized))
			})

			It("grants client credentials only, and refuses unknown clients like UAA", func() {
				resp := lab.token(url.Values{"grant_type": {"password"}, "client_id": {client}, "client_secret": {secret}})
				Expect(resp.Status).To(Equal(http.StatusBadRequest))
				Expect(decode[map[string]any](resp.Body)).To(HaveKeyWithValue("error", "unsupported_grant_type"))

				resp = lab.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"someone"}, "client_secret": {secret}})
				Expect(resp.Status).To(Equal(http.StatusUnauthorized))
				Expect(resp.Body).To(MatchJSON(`{"error":"unauthorized","error_description":"Bad credentials"}`))
			})

			It("serves the login prompts", func() {
				resp, err := lab.httpClient().Get(lab.UAAURL + "/login")
				Expect(err).NotTo(HaveOccurred())
				defer resp.Body.Close()
				raw, err := io.ReadAll(resp.Body)
				Expect(err).NotTo(HaveOccurred())
				Expect(decode[map[string]any](string(raw))).To(HaveKeyWithValue("prompts", HaveKey("password")))
			})
		})
	})

	It("logs every request without credentials, tokens or keys", func() {
		lab.request("GET", "/info", "")
		lab.request("GET", "/deployments", "", "Authorization: Basic "+basic(client, "wrong"))
		lab.request("POST", "/deployments/sample/ssh", setupBody)

		uaa := startDirector("uaa", agent)
		token := decode[map[string]any](uaa.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}}).Body)["access_token"].(string)
		uaa.request("GET", "/deployments", "", "Authorization: bearer "+token)

		log := string(lab.Log.Contents()) + string(uaa.Log.Contents())
		Expect(log).To(MatchRegexp(`(?m)^\S+ director GET /info 200 \S+$`))
		Expect(log).To(MatchRegexp(`(?m)^\S+ director GET /deployments 401 \S+$`))
		Expect(log).To(MatchRegexp(`(?m)^\S+ director POST /deployments/sample/ssh 302 \S+$`))
		Expect(log).To(MatchRegexp(`(?m)^\S+ uaa POST /oauth/token 200 \S+$`))
		Expect(log).To(MatchRegexp(`(?m)^\S+ director GET /deployments 200 \S+$`))
		for _, secretish := range []string{secret, "wrong", token, basic(client, secret), "AAAAC3", "Authorization", "earer"} {
			Expect(log).NotTo(ContainSubstring(secretish))
		}
	})
})
