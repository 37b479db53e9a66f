package scheduler

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"k8s.io/client-go/rest"

	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
)

// gerritWorld is a fake Gerrit and the daemon's credentials for it, as
// files in dir.
type gerritWorld struct {
	srv                        *gerrittest.Server
	dir                        string
	key, knownHosts, passwordF string
}

func newGerritWorld(t *testing.T) *gerritWorld {
	t.Helper()
	srv, err := gerrittest.New(gerrittest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	w := &gerritWorld{srv: srv, dir: t.TempDir()}
	c, err := srv.WriteCredentials(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	w.key, w.knownHosts, w.passwordF = c.KeyFile, c.KnownHostsFile, c.PasswordFile
	return w
}

// testMainConfig is a daemon configuration; gerritWorld.config fills it.
const testMainConfig = `gerrit:
  url: %q
  ssh: %q
  user: %q
  ssh-key-file: %q
  known-hosts-file: %q
  http-password-file: %q
kubernetes:
  kubeconfig: %q
  create-namespaces: true
state-dir: %q
web:
  listen: "127.0.0.1:0"
  internal-listen: "localhost:0"
  internal-url: http://127.0.0.1:1
queues:
  - {name: demo, projects: [demo/app]}
pipelines:
  - name: gate
    manager: dependent
    trigger:
      - event: [comment-added]
        approval: [{label: Code-Review, value: [2]}]
    report:
      success: {labels: {Verified: 2}, submit: true}
      failure: {labels: {Verified: -2}}
`

// config returns a configuration for the world, with kubeconfig, state in
// stateDir, and extra appended.
func (w *gerritWorld) config(t *testing.T, kubeconfig, stateDir, extra string) *Config {
	t.Helper()
	doc := fmt.Sprintf(testMainConfig, w.srv.URL()+"/", w.srv.SSHAddr(), w.srv.User(), w.key, w.knownHosts,
		w.passwordF, kubeconfig, stateDir) + extra
	cfg, err := ParseMainConfig(filepath.Join(w.dir, "seakeeper.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// eventually polls ok for up to limit.
func eventually(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get returns the status and body of GET http://addr/path.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkNamed returns the check called name.
func checkNamed(t *testing.T, checks []Check, name string) Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %q check among %v", name, checks)
	return Check{}
}

// TestReach: check-config --reach against gerrittest and the real
// kube-apiserver: every check passes with good credentials, and each kind
// of bad one fails the check it concerns, saying why.
func TestReach(t *testing.T) {
	c := kubetest.StartShared(t)
	c.InstallArgoCRDs(t)
	w := newGerritWorld(t)
	kubeconfig := kubetest.WriteKubeconfig(t, c.AdminConfig(), "")
	const election = "leader-election: {enabled: true, namespace: seakeeper}\n"
	opts := ReachOptions{Timeout: 30 * time.Second, StreamHold: 300 * time.Millisecond}
	ctx := context.Background()

	t.Run("good credentials", func(t *testing.T) {
		checks := Reach(ctx, w.config(t, kubeconfig, t.TempDir(), election), opts)
		var out bytes.Buffer
		if !PrintChecks(&out, checks) {
			t.Errorf("a check failed:\n%s", out.String())
		}
		t.Logf("check-config --reach says:\n%s", out.String())
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		want := []string{"gerrit rest: ok: ", "gerrit ssh: ok: ", "kubernetes api: ok: ", "kubernetes workflows: ok: ", "kubernetes permissions: ok: "}
		if len(lines) != len(want) {
			t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
		}
		for i, l := range lines {
			if !strings.HasPrefix(l, want[i]) {
				t.Errorf("line %d = %q, want it to start with %q", i+1, l, want[i])
			}
		}
		if d := checkNamed(t, checks, "gerrit rest").Detail; !strings.Contains(d, fmt.Sprintf("as %q", w.srv.User())) {
			t.Errorf("the REST check does not name the account: %q", d)
		}
		// The permissions checked include the Lease and the namespaces.
		d := checkNamed(t, checks, "kubernetes permissions").Detail
		for _, s := range []string{"may list, watch workflows.argoproj.io in all namespaces; ", "; create namespaces; ",
			"; get, create, update leases.coordination.k8s.io seakeeper in namespace seakeeper",
			"; create, get, patch, delete workflows.argoproj.io in namespace ci-demo-app-"} {
			if !strings.Contains(d, s) {
				t.Errorf("permissions checked lack %q: %s", s, d)
			}
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		cfg := w.config(t, kubeconfig, t.TempDir(), "")
		bad := filepath.Join(t.TempDir(), "password")
		writeTestFile(t, bad, "not-the-password\n")
		cfg.Gerrit.HTTPPasswordFile = bad
		checks := Reach(ctx, cfg, opts)
		rest := checkNamed(t, checks, "gerrit rest")
		t.Log(rest)
		if rest.Err == nil || !strings.Contains(rest.Err.Error(), "401") || !strings.Contains(rest.String(), "gerrit rest: FAILED: ") {
			t.Errorf("REST check with a wrong password: %s", rest)
		}
		if s := checkNamed(t, checks, "gerrit ssh"); s.Err != nil {
			t.Errorf("the SSH check failed too: %s", s)
		}
		if PrintChecks(&bytes.Buffer{}, checks) {
			t.Error("PrintChecks reports success")
		}
	})

	t.Run("unknown host key", func(t *testing.T) {
		other, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		otherKey, err := ssh.NewPublicKey(other)
		if err != nil {
			t.Fatal(err)
		}
		cfg := w.config(t, kubeconfig, t.TempDir(), "")
		cfg.Gerrit.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
		writeTestFile(t, cfg.Gerrit.KnownHostsFile, knownhosts.Line([]string{knownhosts.Normalize(w.srv.SSHAddr())}, otherKey)+"\n")
		s := checkNamed(t, Reach(ctx, cfg, opts), "gerrit ssh")
		served := ssh.FingerprintSHA256(w.srv.SSH().HostKey())
		t.Log(s)
		if s.Err == nil || !strings.Contains(s.Err.Error(), served) {
			t.Errorf("SSH check with another host key in known_hosts: %s; want a failure naming %s", s, served)
		}
	})

	t.Run("host not in known_hosts", func(t *testing.T) {
		cfg := w.config(t, kubeconfig, t.TempDir(), "")
		cfg.Gerrit.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
		writeTestFile(t, cfg.Gerrit.KnownHostsFile, knownhosts.Line([]string{"elsewhere.example.org"}, w.srv.SSH().HostKey())+"\n")
		s := checkNamed(t, Reach(ctx, cfg, opts), "gerrit ssh")
		t.Log(s)
		served := ssh.FingerprintSHA256(w.srv.SSH().HostKey())
		if s.Err == nil || !strings.Contains(s.Err.Error(), "is unknown: ssh-ed25519 "+served) {
			t.Errorf("SSH check of a host known_hosts does not list: %s; want a failure naming %s", s, served)
		}
	})

	t.Run("kubernetes unreachable", func(t *testing.T) {
		dead := kubetest.WriteKubeconfig(t, &rest.Config{Host: "https://" + closedPort(t), BearerToken: "x",
			TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData()}}, "")
		checks := Reach(ctx, w.config(t, dead, t.TempDir(), ""), opts)
		api := checkNamed(t, checks, "kubernetes api")
		t.Log(api)
		if api.Err == nil || !strings.Contains(api.Err.Error(), "connection refused") {
			t.Errorf("API check against a closed port: %s", api)
		}
		if len(checks) != 3 {
			t.Errorf("the checks that need the API ran anyway: %v", checks)
		}
	})

	t.Run("missing permission", func(t *testing.T) {
		ns := c.UniqueName("reach")
		sa := c.ServiceAccount(t, ns, "seakeeper")
		c.Grant(t, "", ns, "seakeeper", map[string][]string{"workflows": {"list", "create", "get", "patch", "delete"}})
		o := opts
		o.RestConfig = sa
		cfg := w.config(t, kubeconfig, t.TempDir(), "")
		cfg.Kubernetes.CreateNamespaces = false
		perm := checkNamed(t, Reach(ctx, cfg, o), "kubernetes permissions")
		if perm.Err == nil || perm.Err.Error() != "not allowed to watch workflows.argoproj.io in all namespaces" {
			t.Errorf("permissions of a ServiceAccount without watch: %s", perm)
		}
	})
}
