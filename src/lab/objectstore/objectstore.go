// Package objectstore runs a real S3-compatible server for the suites and
// the bench: SeaweedFS (`weed server -s3`), on loopback, with one
// identity and its buckets. It is what an operator's bucket is in the lab.
package objectstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Server is a running SeaweedFS with its S3 gateway.
type Server struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string

	bin, dir string
	args     []string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// Start runs bin (the weed binary) with its data under dir.
func Start(bin, dir string) (*Server, error) {
	s := &Server{bin: bin, dir: dir, AccessKey: "bbr" + token(6), SecretKey: token(20)}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	config := map[string]any{"identities": []any{map[string]any{
		"name":        "bbr",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	raw, _ := json.Marshal(config)
	configPath := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(configPath, raw, 0o600); err != nil {
		return nil, err
	}
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	s.Endpoint = "http://127.0.0.1:" + p(6)
	s.args = []string{"server", "-dir=" + filepath.Join(dir, "data"), "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + p(0), "-master.port.grpc=" + p(1), "-volume.port=" + p(2), "-volume.port.grpc=" + p(3),
		"-filer", "-filer.port=" + p(4), "-filer.port.grpc=" + p(5),
		"-s3", "-s3.port=" + p(6), "-s3.port.grpc=" + p(7), "-s3.config=" + configPath,
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-master.volumeSizeLimitMB=1024", "-volume.max=32"}
	return s, s.start()
}

func (s *Server) start() error {
	log, err := os.OpenFile(filepath.Join(s.dir, "weed.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting SeaweedFS: %w", err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	return s.waitReady()
}

// waitReady waits until the gateway answers a signed request.
func (s *Server) waitReady() error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("SeaweedFS exited (see %s)", filepath.Join(s.dir, "weed.log"))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("SeaweedFS's S3 gateway did not answer in 90s (see %s): %w", filepath.Join(s.dir, "weed.log"), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Client is a plain S3 client with the server's identity.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.Endpoint[len("http://"):], &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
}

// CreateBucket makes a bucket.
func (s *Server) CreateBucket(name string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{})
}

// Warm writes and removes an object in bucket: SeaweedFS allocates a
// bucket's volumes on its first write, which takes seconds.
func (s *Server) Warm(bucket string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := c.PutObject(ctx, bucket, "warm-up", strings.NewReader("warm"), 4, minio.PutObjectOptions{}); err != nil {
		return err
	}
	return c.RemoveObject(ctx, bucket, "warm-up", minio.RemoveObjectOptions{})
}

// Kill stops the server at once, as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// Restart starts the server again on the same ports and data.
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

// Stop ends the server.
func (s *Server) Stop() { s.Kill() }

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.New("no free loopback port for SeaweedFS")
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func token(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
