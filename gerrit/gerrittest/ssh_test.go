package gerrittest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// sshTestTimeout bounds every wait: generous, for loaded CI machines.
const sshTestTimeout = 20 * time.Second

type sshTestEnv struct {
	srv *SSHServer
	bus *Bus
	key ssh.Signer
}

func newSSHTestEnv(t *testing.T, opts SSHOptions) *sshTestEnv {
	t.Helper()
	key, err := NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	opts.Users = map[string][]ssh.PublicKey{"ci": {key.PublicKey()}}
	bus := NewBus()
	srv, err := NewSSHServer(bus, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &sshTestEnv{srv: srv, bus: bus, key: key}
}

func (e *sshTestEnv) dial(user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	if auth == nil {
		auth = []ssh.AuthMethod{ssh.PublicKeys(e.key)}
	}
	return ssh.Dial("tcp", e.srv.Addr(), &ssh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: ssh.FixedHostKey(e.srv.HostKey()), Timeout: sshTestTimeout,
	})
}

// sshTestRun is a command running on the server.
type sshTestRun struct {
	sess   *ssh.Session
	lines  chan string // stdout, closed at EOF
	stderr *strings.Builder
	mu     sync.Mutex
}

func (e *sshTestEnv) start(t *testing.T, cmd string) *sshTestRun {
	t.Helper()
	c, err := e.dial("ci")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	r := &sshTestRun{sess: sess, lines: make(chan string, 4096), stderr: &strings.Builder{}}
	out, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sess.Stderr = lockedWriter{r}
	if err := sess.Start(cmd); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	return r
}

type lockedWriter struct{ r *sshTestRun }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.stderr.Write(p)
}

func (r *sshTestRun) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-r.lines:
		if !ok {
			t.Fatal("stdout ended")
		}
		return l
	case <-time.After(sshTestTimeout):
		t.Fatal("no line in time")
	}
	return ""
}

func (r *sshTestRun) event(t *testing.T) *gerrit.Event {
	t.Helper()
	l := r.line(t)
	ev, err := gerrit.ParseEvent([]byte(l))
	if err != nil {
		t.Fatalf("line %q: %v", l, err)
	}
	return ev
}

func (r *sshTestRun) eof(t *testing.T) {
	t.Helper()
	select {
	case l, ok := <-r.lines:
		if ok {
			t.Fatalf("got %q, want the end of output", l)
		}
	case <-time.After(sshTestTimeout):
		t.Fatal("output did not end")
	}
}

func sshTestEvent(typ string, n int) *gerrit.Event {
	return &gerrit.Event{Type: typ, Change: &gerrit.Change{Project: "p", Branch: "master", Number: gerrit.FlexInt(n)}}
}

func sshTestWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(sshTestTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSSHStreamEventsFilters(t *testing.T) {
	e := newSSHTestEnv(t, SSHOptions{})
	some := e.start(t, "gerrit stream-events -s comment-added --subscribe=change-merged")
	all := e.start(t, "gerrit stream-events")
	if n := e.srv.Sessions(); n != 2 {
		t.Fatalf("Sessions() = %d, want 2", n)
	}
	types := []string{gerrit.TypePatchsetCreated, gerrit.TypeCommentAdded, gerrit.TypeChangeMerged,
		gerrit.TypeRefUpdated, gerrit.TypeCommentAdded}
	for i, typ := range types {
		e.bus.Publish(sshTestEvent(typ, i))
	}
	for i, typ := range types {
		if ev := all.event(t); ev.Type != typ || ev.Change.Number.Int() != i || ev.EventCreatedOn == 0 {
			t.Errorf("unfiltered stream: got %s %d at %d, want %s %d", ev.Type, ev.Change.Number, ev.EventCreatedOn, typ, i)
		}
	}
	for _, want := range []int{1, 2, 4} {
		if ev := some.event(t); ev.Change.Number.Int() != want || ev.Type != types[want] {
			t.Errorf("filtered stream: got %s %d, want %s %d", ev.Type, ev.Change.Number, types[want], want)
		}
	}
}

func TestSSHQueueOverflowWritesDroppedOutput(t *testing.T) {
	e := newSSHTestEnv(t, SSHOptions{QueueSize: 4})
	r := e.start(t, "gerrit stream-events")
	e.srv.Stall(true)
	for i := range 10 {
		e.bus.Publish(sshTestEvent(gerrit.TypePatchsetCreated, i))
	}
	if got := e.srv.Dropped(); got != 6 {
		t.Errorf("Dropped() = %d, want 6", got)
	}
	e.srv.Stall(false)
	for i := range 4 {
		if ev := r.event(t); ev.Change.Number.Int() != i {
			t.Fatalf("got change %d, want %d", ev.Change.Number, i)
		}
	}
	if ev := r.event(t); ev.Type != gerrit.TypeDroppedOutput || ev.EventCreatedOn == 0 {
		t.Fatalf("got %+v, want dropped-output with a time", ev)
	}
	e.bus.Publish(sshTestEvent(gerrit.TypePatchsetCreated, 10))
	if ev := r.event(t); ev.Change.Number.Int() != 10 {
		t.Fatalf("got change %d after dropped-output, want 10", ev.Change.Number)
	}
}

func TestSSHStallHoldsEventsAndKeepalives(t *testing.T) {
	e := newSSHTestEnv(t, SSHOptions{})
	c, err := e.dial("ci")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil || !ok {
		t.Fatalf("keepalive: %v %v", ok, err)
	}
	r := e.start(t, "gerrit stream-events")
	e.srv.Stall(true)
	replied := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		replied <- err
	}()
	e.bus.Publish(sshTestEvent(gerrit.TypeCommentAdded, 1))
	select {
	case err := <-replied:
		t.Fatalf("a stalled server answered a keepalive (%v)", err)
	case l := <-r.lines:
		t.Fatalf("a stalled server wrote %q", l)
	case <-time.After(100 * time.Millisecond):
	}
	e.srv.Stall(false)
	if ev := r.event(t); ev.Change.Number.Int() != 1 {
		t.Fatalf("got change %d", ev.Change.Number)
	}
	select {
	case err := <-replied:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(sshTestTimeout):
		t.Fatal("keepalive not answered after Stall(false)")
	}
}

func TestSSHAuthentication(t *testing.T) {
	e := newSSHTestEnv(t, SSHOptions{})
	other, err := NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, auth := range map[string][]ssh.AuthMethod{
		"unknown key": {ssh.PublicKeys(other)},
		"password":    {ssh.Password("secret")},
	} {
		if c, err := e.dial("ci", auth...); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s: got %v, want refused", name, err)
		}
	}
	if c, err := e.dial("someone-else"); err == nil {
		c.Close()
		t.Error("a key was accepted for another user")
	}
	e.srv.AddUser("ci", other.PublicKey())
	c, err := e.dial("ci", ssh.PublicKeys(other))
	if err != nil {
		t.Fatalf("after AddUser: %v", err)
	}
	c.Close()
}

func TestSSHRefusesOtherCommands(t *testing.T) {
	e := newSSHTestEnv(t, SSHOptions{})
	for cmd, want := range map[string]string{
		"gerrit ls-projects":                "fatal: gerrit: ls-projects: not found",
		"git-upload-pack /p":                "fatal: git-upload-pack: not found",
		"gerrit stream-events --follow":     `fatal: "--follow" is not a valid option`,
		"gerrit stream-events -s":           `fatal: Option "--subscribe (-s)" takes an operand`,
		"gerrit stream-events -s x --bad y": `fatal: "--bad" is not a valid option`,
	} {
		r := e.start(t, cmd)
		r.eof(t)
		err := r.sess.Wait()
		var exit *ssh.ExitError
		if !errors.As(err, &exit) || exit.ExitStatus() != 1 {
			t.Errorf("%s: got %v, want exit status 1", cmd, err)
		}
		r.mu.Lock()
		if got := strings.TrimSpace(r.stderr.String()); got != want {
			t.Errorf("%s: stderr %q, want %q", cmd, got, want)
		}
		r.mu.Unlock()
	}
	if n := e.srv.Sessions(); n != 0 {
		t.Errorf("Sessions() = %d, want 0", n)
	}
}

func TestSSHSeverCutsEveryConnection(t *testing.T) {
	e := newSSHTestEnv(t, SSHOptions{})
	a, b := e.start(t, "gerrit stream-events"), e.start(t, "gerrit stream-events")
	e.srv.Sever()
	a.eof(t)
	b.eof(t)
	sshTestWait(t, "sessions to end", func() bool { return e.srv.Sessions() == 0 })
	r := e.start(t, "gerrit stream-events")
	e.bus.Publish(sshTestEvent(gerrit.TypeChangeMerged, 7))
	if ev := r.event(t); ev.Change.Number.Int() != 7 {
		t.Fatalf("after Sever: got change %d", ev.Change.Number)
	}
}

func TestSSHCloseEndsSessionsCleanly(t *testing.T) {
	e := newSSHTestEnv(t, SSHOptions{})
	r := e.start(t, "gerrit stream-events")
	e.srv.Stall(true) // Close must not hang on a stalled session
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	r.eof(t)
	if err := r.sess.Wait(); err != nil {
		t.Errorf("Wait() = %v, want exit status 0", err)
	}
	if _, err := e.dial("ci"); err == nil {
		t.Error("dial after Close succeeded")
	}
	if err := e.srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSSHKnownHostsLine(t *testing.T) {
	e := newSSHTestEnv(t, SSHOptions{})
	line := string(e.srv.KnownHosts())
	_, port, _ := strings.Cut(e.srv.Addr(), ":")
	if want := fmt.Sprintf("[127.0.0.1]:%s ssh-ed25519 ", port); !strings.HasPrefix(line, want) || !strings.HasSuffix(line, "\n") {
		t.Fatalf("KnownHosts() = %q, want %q...", line, want)
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	check, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", e.srv.Addr(), &ssh.ClientConfig{
		User: "ci", Auth: []ssh.AuthMethod{ssh.PublicKeys(e.key)}, HostKeyCallback: check, Timeout: sshTestTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestBusPublishDoesNotModifyEvent(t *testing.T) {
	b := NewBus()
	q := b.subscribe(nil, 8)
	ev := sshTestEvent(gerrit.TypeCommentAdded, 3)
	b.Publish(ev)
	b.PublishRaw([]byte("not json"))
	if ev.EventCreatedOn != 0 {
		t.Error("Publish stamped the caller's event")
	}
	lines, dropped := q.take()
	if len(lines) != 2 || dropped {
		t.Fatalf("got %d lines (dropped %v), want 2", len(lines), dropped)
	}
	got, err := gerrit.ParseEvent(lines[0])
	if err != nil || got.EventCreatedOn == 0 || got.Change.Number != 3 {
		t.Errorf("published %s (%v), want change 3 with a time", lines[0], err)
	}
	if string(lines[1]) != "not json\n" {
		t.Errorf("raw line %q", lines[1])
	}
}
