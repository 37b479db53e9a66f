package gerrittest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// fakeStart is the fixed time of the tests' clock.
var fakeStart = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newFake starts a server with a fixed clock and one project.
func newFake(t *testing.T, project string, st SubmitType, mod ...func(*Options)) (*Server, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: fakeStart}
	opts := Options{Dir: t.TempDir(), Clock: clk.now, Password: "secret"}
	for _, m := range mod {
		m(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if project != "" {
		must(t, s.CreateProject(project, st))
	}
	return s, clk
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// call makes a REST call; auth adds /a/ and the daemon's credentials.
func call(t *testing.T, s *Server, method, path string, auth bool, body any) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(t, err)
		r = bytes.NewReader(b)
	}
	url := s.URL() + path
	if auth {
		url = s.URL() + "/a" + path
	}
	req, err := http.NewRequest(method, url, r)
	must(t, err)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.SetBasicAuth(s.User(), s.Password())
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// decodeJSON strips Gerrit's prefix (failing without it) and decodes.
func decodeJSON(t *testing.T, body string, v any) {
	t.Helper()
	rest, ok := strings.CutPrefix(body, ")]}'\n")
	if !ok {
		t.Fatalf("body lacks the )]}' prefix: %q", body)
	}
	if err := json.Unmarshal([]byte(rest), v); err != nil {
		t.Fatalf("decode %q: %v", rest, err)
	}
}

// git runs git in dir with the user's configuration out of the way.
func git(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv("GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(t, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// eventTypes lists the types of events.
func eventTypes(evs []*gerrit.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func TestNewDefaultsAndClose(t *testing.T) {
	s, err := New(Options{})
	must(t, err)
	if s.User() != "seakeeper" || len(s.Password()) < 16 || !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("defaults: user %q password %q url %q", s.User(), s.Password(), s.URL())
	}
	if !strings.HasPrefix(s.SSHAddr(), "127.0.0.1:") || s.ClientSigner() == nil {
		t.Errorf("ssh: addr %q", s.SSHAddr())
	}
	dir := s.Dir()
	must(t, s.CreateProject("p", MergeIfNecessary))
	if _, err := os.Stat(s.repoDir("p")); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary dir %s left behind: %v", dir, err)
	}
}

func TestCreateProjectRefusesBadNames(t *testing.T) {
	s, _ := newFake(t, "", "")
	for _, name := range []string{"", "/x", "x/", "a/../b", "x.git", "changes", "a", "a/b", "p~q"} {
		if err := s.CreateProject(name, MergeIfNecessary); err == nil {
			t.Errorf("CreateProject(%q) accepted", name)
		}
	}
	must(t, s.CreateProject("mediawiki/core", CherryPick))
	var e *Error
	if err := s.CreateProject("mediawiki/core", CherryPick); !errors.As(err, &e) || e.Status != http.StatusConflict {
		t.Errorf("duplicate project: %v", err)
	}
	if err := s.CreateProject("q", "SQUASH"); err == nil {
		t.Error("unknown submit type accepted")
	}
}

// TestStreamEventsOverSSH reads the events of API actions over the real
// SSH stream, as the daemon does, with the daemon's key and known_hosts.
func TestStreamEventsOverSSH(t *testing.T) {
	s, _ := newFake(t, "p", MergeIfNecessary)
	hk, err := knownhosts.New(writeTemp(t, s.KnownHosts()))
	must(t, err)
	c, err := ssh.Dial("tcp", s.SSHAddr(), &ssh.ClientConfig{
		User: s.User(), Auth: []ssh.AuthMethod{ssh.PublicKeys(s.ClientSigner())},
		HostKeyCallback: hk, Timeout: 10 * time.Second,
	})
	must(t, err)
	defer c.Close()
	sess, err := c.NewSession()
	must(t, err)
	defer sess.Close()
	out, err := sess.StdoutPipe()
	must(t, err)
	must(t, sess.Start("gerrit stream-events"))
	// The session subscribes asynchronously: publish until the first
	// event arrives, then check the order of what follows.
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(20 * time.Second)
	for got := false; !got; {
		must(t, s.Comment("p", mustChange(t, s, ChangeSpec{Project: "p"}).Number, "alice", "ping"))
		select {
		case <-lines:
			got = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no event on the stream")
		}
	}
	ch := mustChange(t, s, ChangeSpec{Project: "p"})
	must(t, s.Approve("p", ch.Number, "Code-Review", 2, "alice"))
	var got []string
	for len(got) < 2 {
		select {
		case l := <-lines:
			ev, err := gerrit.ParseEvent([]byte(l))
			must(t, err)
			if ev.Change == nil || int(ev.Change.Number) != ch.Number {
				continue // warm-up events
			}
			got = append(got, ev.Type)
			if ev.EventCreatedOn != gerrit.FlexInt(fakeStart.Unix()) {
				t.Errorf("eventCreatedOn in %s", l)
			}
		case <-deadline:
			t.Fatalf("got only %v", got)
		}
	}
	if strings.Join(got, " ") != "patchset-created comment-added" {
		t.Errorf("stream order %v", got)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "known_hosts")
	must(t, err)
	_, err = f.Write(b)
	must(t, err)
	must(t, f.Close())
	return f.Name()
}

func mustChange(t *testing.T, s *Server, spec ChangeSpec) *Change {
	t.Helper()
	c, err := s.CreateChange(spec)
	must(t, err)
	return c
}
