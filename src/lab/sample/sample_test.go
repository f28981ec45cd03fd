package sample_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"gopkg.in/yaml.v3"

	"github.com/bbr-release/bbr/src/lab/sample"
)

var _ = Describe("the embedded sample", func() {
	It("extracts as a deployment directory with executable scripts", func() {
		Expect(sample.Deployments()).To(ContainElement(sample.Default))
		dst := filepath.Join(GinkgoT().TempDir(), "sample")
		Expect(sample.Extract(sample.Default, dst)).To(Succeed())

		var m struct {
			Name           string
			InstanceGroups []struct {
				Name      string
				Instances int
				Jobs      []struct{ Name, Release string }
			} `yaml:"instance_groups"`
		}
		raw, err := os.ReadFile(filepath.Join(dst, "manifest.yml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(yaml.Unmarshal(raw, &m)).To(Succeed())
		Expect(m.Name).To(Equal("sample"))
		groups := map[string]int{}
		for _, g := range m.InstanceGroups {
			groups[g.Name] = g.Instances
			for _, j := range g.Jobs {
				Expect(j.Release).To(Equal("lab-sample"))
				Expect(filepath.Join(dst, "releases", j.Release, "jobs", j.Name, "bin", "start")).To(BeARegularFile())
			}
		}
		Expect(groups).To(Equal(map[string]int{"redis": 2, "postgres": 1, "api": 1}))

		scripts, err := filepath.Glob(filepath.Join(dst, "releases/lab-sample/jobs/*/bin/bbr/*"))
		Expect(err).NotTo(HaveOccurred())
		Expect(scripts).To(HaveLen(8))
		for _, s := range scripts {
			st, err := os.Stat(s)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o755)), s)
			body, err := os.ReadFile(s)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(body)).To(HavePrefix("#!/bin/bash\n"))
			Expect(string(body)).To(ContainSubstring("set -euo pipefail\nsource /var/vcap/bosh/instance.env\n"))
			Expect(string(body)).To(ContainSubstring("/bbr.log"), "every bbr script logs what it did")
		}
	})

	It("refuses an unknown deployment", func() {
		Expect(sample.Extract("nope", GinkgoT().TempDir())).To(MatchError(ContainSubstring(`no embedded deployment "nope"`)))
	})
})

var _ = Describe("the sample API", func() {
	It("answers 503 while the maintenance file exists and logs each change", func() {
		dir := GinkgoT().TempDir()
		flag := filepath.Join(dir, "maintenance")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		addr := ln.Addr().String()
		ln.Close()

		log := gbytes.NewBuffer() // safe for the API's concurrent writes
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- sample.ServeAPI(ctx, sample.APIConfig{
				Listen: addr, MaintenanceFile: flag, Log: log,
				PidFile: filepath.Join(dir, "api.pid"), Poll: 10 * time.Millisecond,
			})
		}()
		get := func() (int, string) {
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				return 0, err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		Eventually(func() int { code, _ := get(); return code }).Should(Equal(http.StatusOK))
		Expect(filepath.Join(dir, "api.pid")).To(BeARegularFile())

		Expect(os.WriteFile(flag, nil, 0o644)).To(Succeed())
		code, body := get()
		Expect(code).To(Equal(http.StatusServiceUnavailable))
		Expect(body).To(Equal("down for maintenance\n"))

		Expect(os.Remove(flag)).To(Succeed())
		code, body = get()
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(Equal("ok\n"))

		cancel()
		Eventually(done).Should(Receive(BeNil()))
		var states []string
		for _, line := range strings.Split(string(log.Contents()), "\n") {
			if _, rest, ok := strings.Cut(line, " state "); ok {
				states = append(states, strings.Fields(rest)[0])
			}
		}
		Expect(states).To(Equal([]string{"serving", "maintenance", "serving"}))
		Expect(filepath.Join(dir, "api.pid")).NotTo(BeAnExistingFile())
	})
})
