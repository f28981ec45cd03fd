package bucket_test

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/bucket"
)

// stallingProxy is a loopback TCP proxy in front of an S3 server. Once
// armed, each connection forwards only budget more bytes each way and
// then stops sending, as a server or middlebox that stalls mid-response
// (or stops reading a request) does. With once, only the first
// connection to use its budget stalls; the others pass everything.
type stallingProxy struct {
	l        net.Listener
	upstream string
	done     chan struct{}

	mu     sync.Mutex
	gen    int
	budget int64 // < 0: no limit
	once   bool
	stalls int
	conns  []net.Conn
}

func newStallingProxy(upstream string) *stallingProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	p := &stallingProxy{l: l, upstream: upstream, done: make(chan struct{}), budget: -1}
	go p.serve()
	// Before the server's cleanup: a request it holds half-read ends
	// when its connection closes.
	DeferCleanup(p.close)
	return p
}

func (p *stallingProxy) endpoint() string { return "http://" + p.l.Addr().String() }

func (p *stallingProxy) serve() {
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go p.pipe(server, client)
		go p.pipe(client, server)
	}
}

// arm makes every connection stop after budget more bytes each way.
func (p *stallingProxy) arm(budget int64, once bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	p.budget, p.once = budget, once
}

func (p *stallingProxy) stalled() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalls
}

// pipe copies src to dst within the budget; a stalled pipe holds its
// bytes until the proxy closes.
func (p *stallingProxy) pipe(dst, src net.Conn) {
	defer func() { _, _ = dst.Close(), src.Close() }()
	buf := make([]byte, 32<<10)
	s := pipeState{gen: -1}
	for {
		n, err := src.Read(buf)
		for b := buf[:n]; len(b) > 0; {
			k := p.allow(&s, len(b))
			if k == 0 {
				<-p.done
				return
			}
			if _, werr := dst.Write(b[:k]); werr != nil {
				return
			}
			b = b[k:]
		}
		if err != nil {
			return
		}
	}
}

type pipeState struct {
	gen  int
	left int64
}

// allow is how many of want bytes the pipe may send now; 0 is a stall.
func (p *stallingProxy) allow(s *pipeState, want int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.gen != p.gen {
		s.gen, s.left = p.gen, p.budget
	}
	if s.left < 0 {
		return want
	}
	if s.left == 0 {
		if p.once && p.stalls > 0 {
			s.left = -1
			return want
		}
		p.stalls++
		return 0
	}
	k := min(int64(want), s.left)
	s.left -= k
	return int(k)
}

func (p *stallingProxy) close() {
	_ = p.l.Close()
	close(p.done)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

var _ = Describe("a bucket that stalls", func() {
	const (
		backup = "cf_20261201T100000Z"
		tar    = "db-0-pg.tar"
		// The whole operation's bound, not its expected duration: a
		// stall is noticed within StallTimeout, retried a few times.
		failsWithin = time.Minute
	)
	var (
		direct, proxied bucket.Config
		proxy           *stallingProxy
	)
	BeforeEach(func() {
		_, url := fakeServer(&recorder{}, false)
		proxy = newStallingProxy(hostOf(url))
		direct = bucket.Config{Bucket: "backups", Prefix: "p", Endpoint: url, Addressing: "path",
			AccessKeyID: fakeKeys[0], SecretAccessKey: fakeKeys[1], PartSize: bucket.MinPartSize, Concurrency: 2}
		proxied = direct
		proxied.Endpoint = proxy.endpoint()
		proxied.StallTimeout = 2 * time.Second
	})
	// store writes a good backup holding tarball, straight to the server.
	store := func(tarball []byte) {
		d, err := bucket.New(ctx, direct)
		Expect(err).NotTo(HaveOccurred())
		w, err := d.Create(ctx, backup, time.Now())
		Expect(err).NotTo(HaveOccurred())
		sums, _, err := w.WriteTar(tar, bytes.NewReader(tarball))
		Expect(err).NotTo(HaveOccurred())
		Expect(w.AddInstanceArtifact("db", 0, "pg", sums)).To(Succeed())
		Expect(w.Finish(time.Now(), nil)).To(Succeed())
	}
	// async runs f, and gives its error when it returns.
	async := func(f func() error) <-chan error {
		errs := make(chan error, 1)
		go func() { errs <- f() }()
		return errs
	}
	stalledOn := func(object string) types.GomegaMatcher {
		return MatchError(And(ContainSubstring(object), ContainSubstring("the S3 endpoint stalled: no byte moved for 2s")))
	}

	It("fails a validation whose read stalls mid-body, naming the object and the stall", func() {
		store(tarOf(256 << 10))
		d, err := bucket.New(ctx, proxied)
		Expect(err).NotTo(HaveOccurred())
		src, err := d.Open(ctx, backup)
		Expect(err).NotTo(HaveOccurred())
		proxy.arm(1<<10, false)
		verified := async(func() error { return artifact.Verify(ctx, src) })
		Eventually(verified).WithTimeout(failsWithin).Should(Receive(stalledOn(tar)))
	})

	It("resumes a read that stalled from the byte it reached", func() {
		tarball := tarOf(256 << 10)
		store(tarball)
		d, err := bucket.New(ctx, proxied)
		Expect(err).NotTo(HaveOccurred())
		src, err := d.Open(ctx, backup)
		Expect(err).NotTo(HaveOccurred())
		proxy.arm(1<<10, true)
		var got []byte
		read := async(func() error {
			body, err := src.Open(ctx, tar)
			if err != nil {
				return err
			}
			defer body.Close()
			got, err = io.ReadAll(body)
			return err
		})
		Eventually(read).WithTimeout(failsWithin).Should(Receive(BeNil()))
		Expect(proxy.stalled()).To(Equal(1))
		Expect(bytes.Equal(got, tarball)).To(BeTrue(), "the bytes before and after the stall, once each")
	})

	It("fails a listing, an open and a connection check whose answers stall before they start", func() {
		store(tarOf(1 << 10))
		d, err := bucket.New(ctx, proxied)
		Expect(err).NotTo(HaveOccurred())
		// Mid-header: these answers are shorter than 1 KiB.
		proxy.arm(100, false)
		listed := async(func() error { _, err := d.List(ctx); return err })
		Eventually(listed).WithTimeout(failsWithin).Should(Receive(stalledOn("s3://backups/p")))
		opened := async(func() error { _, err := d.Open(ctx, backup); return err })
		Eventually(opened).WithTimeout(failsWithin).Should(Receive(stalledOn("s3://backups/p")))
		checked := async(func() error { _, err := bucket.New(ctx, proxied); return err })
		Eventually(checked).WithTimeout(failsWithin).Should(Receive(stalledOn("s3://backups/p")))
	})

	It("retries a part upload that stalled from its buffered bytes", func() {
		d, err := bucket.New(ctx, proxied)
		Expect(err).NotTo(HaveOccurred())
		w, err := d.Create(ctx, backup, time.Now())
		Expect(err).NotTo(HaveOccurred())
		tarball := tarOf(2 * bucket.MinPartSize)
		proxy.arm(1<<10, true)
		written := async(func() error { _, _, err := w.WriteTar(tar, bytes.NewReader(tarball)); return err })
		Eventually(written).WithTimeout(failsWithin).Should(Receive(BeNil()))
		Expect(proxy.stalled()).To(Equal(1))
		obj, err := server{endpoint: direct.Endpoint, keys: fakeKeys}.client().GetObject(ctx, "backups", "p/"+backup+"/"+tar, minio.GetObjectOptions{})
		Expect(err).NotTo(HaveOccurred())
		stored, err := io.ReadAll(obj)
		Expect(err).NotTo(HaveOccurred())
		Expect(bytes.Equal(stored, tarball)).To(BeTrue())
	})

	It("fails an upload that stalls, naming the file and the stall, and marks the backup failed", func() {
		d, err := bucket.New(ctx, proxied)
		Expect(err).NotTo(HaveOccurred())
		w, err := d.Create(ctx, backup, time.Now())
		Expect(err).NotTo(HaveOccurred())
		proxy.arm(1<<10, false)
		written := async(func() error {
			_, _, err := w.WriteTar(tar, bytes.NewReader(tarOf(2*bucket.MinPartSize)))
			return err
		})
		Eventually(written).WithTimeout(failsWithin).Should(Receive(stalledOn(tar)))
		proxy.arm(-1, false)
		Expect(w.Finish(time.Now(), io.ErrUnexpectedEOF)).To(Succeed())
		all, err := d.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(ConsistOf(HaveField("State", artifact.Failed)))
	})
})
