package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// startTimeout bounds the start-up of each of etcd and kube-apiserver; it is
// generous because go test runs other packages' tests (under -race) beside.
const startTimeout = 2 * time.Minute

// Cluster is a running etcd and kube-apiserver on loopback.
type Cluster struct {
	dir   string
	host  string // https://127.0.0.1:<port>
	pki   *pki
	procs []*process // etcd, kube-apiserver

	etcdReady, apiReady time.Duration
	admin               kubernetes.Interface

	crdMu         sync.Mutex
	crdsInstalled bool
	seq           atomic.Int64 // for unique object names
}

// Start starts a cluster for tb and stops it when tb ends; start-up takes a
// few seconds. Without the binaries tb is skipped, or failed with CI=true
// (see BinDir). When tb fails, the tail of both logs is printed.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	bins := findBinaries(tb)
	dir := tb.TempDir()
	c, err := start(bins, dir)
	tb.Cleanup(c.stop)
	if err != nil {
		tb.Fatalf("kubetest: %v\n%s", err, c.logTails())
	}
	tb.Cleanup(func() { c.logIfFailed(tb) })
	tb.Logf("kubetest: %s", c.Describe())
	return c
}

var shared struct {
	inMain atomic.Bool
	once   sync.Once
	c      *Cluster
	err    error
}

// Main runs a package's tests for StartShared and stops the shared cluster
// afterwards. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
func Main(m *testing.M) int {
	shared.inMain.Store(true)
	code := m.Run()
	if c := shared.c; c != nil {
		c.stop()
		os.RemoveAll(c.dir)
	}
	return code
}

// StartShared returns the package's one cluster, starting it on first use;
// it lives until Main returns. Tests sharing it must use distinct
// namespaces. When tb fails, the tail of both logs is printed.
func StartShared(tb testing.TB) *Cluster {
	tb.Helper()
	if !shared.inMain.Load() {
		tb.Fatal("kubetest.StartShared needs the package's TestMain to be: os.Exit(kubetest.Main(m))")
	}
	bins := findBinaries(tb)
	first := false
	shared.once.Do(func() {
		first = true
		dir, err := os.MkdirTemp("", "kubetest-")
		if err != nil {
			shared.err = err
			return
		}
		c, err := start(bins, dir)
		shared.c = c
		if err != nil {
			shared.err = fmt.Errorf("%v\n%s", err, c.logTails())
			c.stop()
		}
	})
	if shared.err != nil {
		tb.Fatalf("kubetest: %v", shared.err)
	}
	c := shared.c
	if first {
		tb.Logf("kubetest: shared cluster: %s", c.Describe())
	}
	tb.Cleanup(func() { c.logIfFailed(tb) })
	return c
}

// start starts etcd and then kube-apiserver with their state and logs in
// dir. It returns the cluster even on error, for stop and logTails.
func start(bins binaries, dir string) (*Cluster, error) {
	c := &Cluster{dir: dir}
	p, err := writePKI(dir)
	if err != nil {
		return c, fmt.Errorf("generating certificates: %w", err)
	}
	c.pki = p
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()

	t0 := time.Now()
	etcdArgs := []string{"--name=kubetest", "--data-dir=" + filepath.Join(dir, "etcd"), "--log-level=warn"}
	if supportsFlag(bins.etcd, "--unsafe-no-fsync") {
		etcdArgs = append(etcdArgs, "--unsafe-no-fsync")
	}
	var etcdURL, peerURL string
	err = c.launch(ctx, "etcd", bins.etcd, 2,
		func(ports []int) []string {
			client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
			peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
			etcdURL, peerURL = client, peer
			return append(slices.Clip(etcdArgs),
				"--listen-client-urls="+client, "--advertise-client-urls="+client,
				"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
				"--initial-cluster=kubetest="+peer)
		},
		func(ctx context.Context) error { return etcdReady(ctx, etcdURL, peerURL) })
	if err != nil {
		return c, err
	}
	c.etcdReady = time.Since(t0)

	t1 := time.Now()
	readyz, err := c.readyzCheck()
	if err != nil {
		return c, err
	}
	err = c.launch(ctx, "kube-apiserver", bins.apiserver, 1,
		func(ports []int) []string {
			c.host = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
			return []string{
				"--etcd-servers=" + etcdURL,
				"--bind-address=127.0.0.1",
				"--advertise-address=127.0.0.1",
				fmt.Sprintf("--secure-port=%d", ports[0]),
				"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
				"--tls-cert-file=" + c.pki.servingCert,
				"--tls-private-key-file=" + c.pki.servKey,
				"--token-auth-file=" + c.pki.tokenFile,
				"--authorization-mode=RBAC",
				"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
				"--service-account-key-file=" + c.pki.saPub,
				"--service-account-signing-key-file=" + c.pki.saKey,
				"--service-cluster-ip-range=10.0.0.0/24",
				// No controllers and no nodes: nothing to reconcile the
				// "kubernetes" Service's endpoints against, and flow control
				// would only cost CPU.
				"--endpoint-reconciler-type=none",
				"--enable-priority-and-fairness=false",
				"--profiling=false",
				// klog buffers file output; the log tail printed on a
				// failure should be recent.
				"--log-flush-frequency=250ms",
			}
		},
		readyz)
	if err != nil {
		return c, err
	}
	c.apiReady = time.Since(t1)

	admin, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		return c, err
	}
	c.admin = admin
	return c, nil
}

// launch starts a process on freshly picked ports and waits until ready
// passes, retrying when another process grabbed a port in between.
func (c *Cluster) launch(ctx context.Context, name, bin string, nports int,
	args func(ports []int) []string, ready func(context.Context) error) error {
	env := childEnv()
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(nports)
		if err != nil {
			return err
		}
		logPath := filepath.Join(c.dir, name+".log")
		if attempt > 1 {
			logPath = filepath.Join(c.dir, fmt.Sprintf("%s.%d.log", name, attempt))
		}
		p, err := startProcess(name, bin, args(ports), env, logPath)
		if err != nil {
			return err
		}
		c.procs = append(c.procs, p)
		err = p.waitReady(ctx, ready)
		if err == nil {
			return nil
		}
		p.kill()
		if attempt < 3 && p.lostPortRace() {
			continue
		}
		return err
	}
}

// childEnv is the environment of the children: ours without etcd's
// configuration variables, which etcd would take as flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	// etcd refuses to run on architectures it does not test unless told
	// (and warns about the variable on the others).
	switch runtime.GOARCH {
	case "amd64", "arm64", "ppc64le", "s390x":
	default:
		env = append(env, "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	}
	return env
}

// supportsFlag reports whether bin's --help mentions flag.
func supportsFlag(bin, flag string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--help")
	cmd.Env = childEnv()
	out, _ := cmd.CombinedOutput() // etcd --help exits 0, others may not
	return strings.Contains(string(out), flag)
}

// etcdReady checks that the etcd at url is healthy and is ours: the one
// member it reports has our peer URL (were our port taken by another etcd
// in the meantime, that one would be healthy too).
func etcdReady(ctx context.Context, url, peerURL string) error {
	body, err := etcdCall(ctx, http.MethodGet, url+"/health")
	if err != nil {
		return err
	}
	if !strings.Contains(body, `"health":"true"`) {
		return fmt.Errorf("etcd /health: %s", body)
	}
	body, err = etcdCall(ctx, http.MethodPost, url+"/v3/cluster/member/list")
	if err != nil {
		return err
	}
	if !strings.Contains(body, `"`+peerURL+`"`) {
		return fmt.Errorf("etcd at %s is not ours (members: %s)", url, body)
	}
	return nil
}

func etcdCall(ctx context.Context, method, url string) (string, error) {
	var reqBody io.Reader
	if method == http.MethodPost {
		reqBody = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, url, reqBody)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("etcd %s: %s %s", url, resp.Status, body)
	}
	return string(body), nil
}

// readyzCheck returns a check of kube-apiserver's /readyz as the admin.
func (c *Cluster) readyzCheck() (func(context.Context) error, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.pki.caPEM) {
		return nil, errors.New("bad generated CA certificate")
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.host+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.pki.adminToken)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("kube-apiserver /readyz: %s\n%s", resp.Status, body)
		}
		return nil
	}, nil
}

// stop kills both processes; the caller removes the directory.
func (c *Cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].kill()
	}
}

// logTails returns the end of every log, for failure messages.
func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "--- last lines of %s (%s):\n%s\n", p.name, filepath.Base(p.logPath), p.tail(50))
	}
	return b.String()
}

func (c *Cluster) logIfFailed(tb testing.TB) {
	if tb.Failed() {
		tb.Logf("kubetest: cluster at %s, logs:\n%s", c.host, c.logTails())
	}
}

// Describe says where the cluster listens and how long it took to start.
func (c *Cluster) Describe() string {
	return fmt.Sprintf("kube-apiserver %s at %s; etcd ready after %v, kube-apiserver after %v more",
		KubeVersion, c.host, c.etcdReady.Round(time.Millisecond), c.apiReady.Round(time.Millisecond))
}

// StartupTime is how long etcd and kube-apiserver took to become ready.
func (c *Cluster) StartupTime() time.Duration { return c.etcdReady + c.apiReady }

// UniqueName returns prefix followed by a number not handed out before on
// this cluster: for namespaces (and projects) of tests that share a
// cluster, which -count=N runs again on the same cluster.
func (c *Cluster) UniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, c.seq.Add(1))
}

// Host is the API server's URL.
func (c *Cluster) Host() string { return c.host }

// CAData is the PEM certificate that the API server's certificate chains to.
func (c *Cluster) CAData() []byte { return append([]byte(nil), c.pki.caPEM...) }

// AdminConfig returns a new client configuration for the static admin (group
// system:masters), with client-side rate limits high enough not to matter.
func (c *Cluster) AdminConfig() *rest.Config {
	return c.tokenConfig(c.pki.adminToken)
}

// AdminClient is a clientset for the admin.
func (c *Cluster) AdminClient() kubernetes.Interface { return c.admin }

func (c *Cluster) tokenConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            c.host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData()},
		QPS:             1000,
		Burst:           2000,
	}
}
