package gerrittest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Dir holds the bare repositories (Dir/<project>.git). Empty: a
	// temporary directory that Close removes. Pass t.TempDir() in tests.
	Dir string
	// Clock is the time of every timestamp, commit date and
	// eventCreatedOn. Default time.Now.
	Clock func() time.Time
	// User is the account the daemon uses, over HTTP (with Password) and
	// SSH (with ClientSigner). Default "seakeeper".
	User string
	// Password is User's HTTP password. Default random.
	Password string
	// Labels of new projects. Default DefaultLabels().
	Labels []Label
	// DefaultBranch of new projects. Default "master".
	DefaultBranch string
	// FirstChange is the number of the first change. Default 1.
	FirstChange int
	// OnEvent, if set, sees every event right after it is published, in
	// order, with the server's lock held: it must not call the Server.
	OnEvent func(*gerrit.Event)
	// SSH configures the stream-events server. User's key is added to it.
	SSH SSHOptions
	// Logf, if set, receives the stderr of git http-backend.
	Logf func(format string, args ...any)
}

// Server is a fake Gerrit: REST and git smart HTTP on one loopback HTTP
// listener, stream-events on a loopback SSH server.
type Server struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	dir    string
	ownDir bool
	git    string

	ln     net.Listener
	http   *http.Server
	url    string
	bus    *Bus
	ssh    *SSHServer
	client ssh.Signer

	faults faults

	mu         sync.Mutex
	accounts   map[string]*account // by username
	projects   map[string]*project
	changes    map[int]*change
	nextChange int
	nextID     int
	msgSeq     int
	events     []*gerrit.Event
}

// New starts a fake Gerrit on 127.0.0.1. Close stops it.
func New(opts Options) (s *Server, err error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.User == "" {
		opts.User = "seakeeper"
	}
	if opts.Password == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		opts.Password = hex.EncodeToString(b)
	}
	if opts.Labels == nil {
		opts.Labels = DefaultLabels()
	}
	if opts.DefaultBranch == "" {
		opts.DefaultBranch = "master"
	}
	if opts.FirstChange <= 0 {
		opts.FirstChange = 1
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, err
	}
	s = &Server{
		opts: opts, git: gitPath, dir: opts.Dir,
		accounts: map[string]*account{}, projects: map[string]*project{},
		changes: map[int]*change{}, nextChange: opts.FirstChange, nextID: 1000000,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "gerrittest-"); err != nil {
			return nil, err
		}
		s.ownDir = true
	}
	u := s.addAccount(opts.User, "Seakeeper", opts.User+"@example.com")
	u.password = opts.Password

	s.bus = NewBus()
	if s.ssh, err = NewSSHServer(s.bus, opts.SSH); err != nil {
		return nil, err
	}
	if s.client, err = NewClientKey(); err != nil {
		return nil, err
	}
	s.ssh.AddUser(opts.User, s.client.PublicKey())

	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.url = "http://" + s.ln.Addr().String()
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = s.http.Serve(s.ln) }()
	return s, nil
}

// Close stops the HTTP and SSH servers and removes a temporary Dir.
func (s *Server) Close() error {
	var errs []error
	if s.http != nil {
		errs = append(errs, s.http.Close())
	} else if s.ln != nil {
		errs = append(errs, s.ln.Close())
	}
	if s.ssh != nil {
		errs = append(errs, s.ssh.Close())
	}
	s.cancel()
	if s.ownDir && s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// URL is the base URL of REST and git, without a trailing slash.
func (s *Server) URL() string { return s.url }

// SSHAddr is the host:port of stream-events.
func (s *Server) SSHAddr() string { return s.ssh.Addr() }

// KnownHosts is a known_hosts line for SSHAddr.
func (s *Server) KnownHosts() []byte { return s.ssh.KnownHosts() }

// User is the daemon's account name (HTTP and SSH).
func (s *Server) User() string { return s.opts.User }

// Password is User's HTTP password.
func (s *Server) Password() string { return s.opts.Password }

// ClientSigner is User's SSH key.
func (s *Server) ClientSigner() ssh.Signer { return s.client }

// SSH gives access to the SSH server for Sever, Stall and AddUser.
func (s *Server) SSH() *SSHServer { return s.ssh }

// Bus is the event bus the SSH server streams from.
func (s *Server) Bus() *Bus { return s.bus }

// Dir is where the bare repositories live.
func (s *Server) Dir() string { return s.dir }

// GitURL is the anonymous fetch URL of a project.
func (s *Server) GitURL(project string) string { return s.url + "/" + project }

// AuthGitURL is the authenticated fetch URL of a project, credentials
// included.
func (s *Server) AuthGitURL(project string) string {
	return "http://" + s.opts.User + ":" + s.opts.Password + "@" + strings.TrimPrefix(s.url, "http://") + "/a/" + project
}

// now is the server time, truncated to Gerrit's millisecond precision.
func (s *Server) now() time.Time { return s.opts.Clock().UTC().Truncate(time.Millisecond) }

// emit stamps and publishes an event; s.mu is held, which keeps events in
// the order of the actions that caused them.
func (s *Server) emit(ev *gerrit.Event) {
	ev.EventCreatedOn = gerrit.FlexInt(s.now().Unix())
	s.events = append(s.events, ev)
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(ev)
	}
	s.bus.Publish(ev)
}

// Events returns every event published so far, oldest first.
func (s *Server) Events() []*gerrit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*gerrit.Event(nil), s.events...)
}

// addAccount creates or returns an account ("" is Options.User); s.mu is
// held or not needed.
func (s *Server) addAccount(username, name, email string) *account {
	if username == "" {
		username = s.opts.User
	}
	if a := s.accounts[username]; a != nil {
		return a
	}
	if name == "" {
		name = strings.ToUpper(username[:1]) + username[1:]
	}
	if email == "" {
		email = username + "@example.com"
	}
	a := &account{Account: Account{ID: s.nextID, Username: username, Name: name, Email: email}}
	s.nextID++
	s.accounts[username] = a
	return a
}

// accountByID finds an account by numeric id.
func (s *Server) accountByID(id int) *account {
	for _, a := range s.accounts {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// authenticate checks HTTP Basic credentials.
func (s *Server) authenticate(r *http.Request) *account {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[user]
	if a == nil || a.password == "" || subtle.ConstantTimeCompare([]byte(a.password), []byte(pass)) != 1 {
		return nil
	}
	return a
}

// ServeHTTP routes /a/... (authenticated) and /... (anonymous) to git
// smart HTTP or REST.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, root := r.URL.Path, ""
	if path == "/a" || strings.HasPrefix(path, "/a/") {
		root, path = "/a", strings.TrimPrefix(path, "/a")
	}
	var who *account
	if root == "/a" {
		if who = s.authenticate(r); who == nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="Gerrit Code Review"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
	}
	for _, suffix := range []string{"/info/refs", "/git-upload-pack", "/git-receive-pack"} {
		if strings.HasSuffix(path, suffix) {
			s.serveGit(w, r, root, strings.TrimSuffix(strings.TrimPrefix(path, "/"), suffix), who)
			return
		}
	}
	s.serveREST(w, r, who)
}

// serveGit answers fetches with git http-backend; pushes are refused.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request, root, name string, who *account) {
	if strings.HasSuffix(r.URL.Path, "/git-receive-pack") || r.URL.Query().Get("service") == "git-receive-pack" {
		http.Error(w, "Forbidden: this server does not accept pushes", http.StatusForbidden)
		return
	}
	name = strings.TrimSuffix(name, ".git")
	s.mu.Lock()
	p := s.projects[name]
	s.mu.Unlock()
	if p == nil {
		http.Error(w, "Repository not found", http.StatusNotFound)
		return
	}
	if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
		// net/http/cgi refuses chunked bodies; git sends them for large
		// negotiations.
		body, err := io.ReadAll(io.LimitReader(r.Body, 256<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body, r.ContentLength, r.TransferEncoding = io.NopCloser(bytes.NewReader(body)), int64(len(body)), nil
	}
	env := []string{
		"GIT_PROJECT_ROOT=" + s.dir, "GIT_HTTP_EXPORT_ALL=1",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + s.dir,
	}
	if who != nil {
		env = append(env, "REMOTE_USER="+who.Username)
	}
	h := &cgi.Handler{
		Path: s.git, Args: []string{"http-backend"}, Root: root, Dir: s.dir, Env: env,
		Stderr: logWriter{s.opts.Logf},
	}
	h.ServeHTTP(w, r)
}

// logWriter forwards http-backend's stderr to Options.Logf.
type logWriter struct{ logf func(string, ...any) }

func (l logWriter) Write(b []byte) (int, error) {
	if l.logf != nil {
		l.logf("git http-backend: %s", bytes.TrimSpace(b))
	}
	return len(b), nil
}

// repoDir is where a project's bare repository lives.
func (s *Server) repoDir(name string) string {
	return filepath.Join(s.dir, filepath.FromSlash(name)+".git")
}

// changeURL is the web URL of a change, as Depends-On footers use it.
func (s *Server) changeURL(c *change) string {
	return fmt.Sprintf("%s/c/%s/+/%d", s.url, c.project.name, c.number)
}

// accountAttr is an account as events show it.
func accountAttr(a *account) *gerrit.Account {
	if a == nil {
		return nil
	}
	return &gerrit.Account{Name: a.Name, Email: a.Email, Username: a.Username}
}

// changeAttr is a change as events show it.
func (s *Server) changeAttr(c *change) *gerrit.Change {
	open := c.status == statusNew
	return &gerrit.Change{
		Project: gerrit.Project(c.project.name), Branch: c.branch, Topic: c.topic, ID: c.changeID,
		Number: gerrit.FlexInt(c.number), Subject: c.current().subject(), Owner: accountAttr(c.owner),
		URL: s.changeURL(c), CommitMessage: c.current().commit.message,
		CreatedOn: gerrit.FlexInt(c.created.Unix()), LastUpdated: gerrit.FlexInt(c.updated.Unix()),
		Open: &open, Status: c.status, WIP: c.wip, Private: c.private,
	}
}

// patchSetAttr is a patchset as events show it; sizeDeletions is
// negative, as Gerrit sends it.
func patchSetAttr(c *change, ps *patchset) *gerrit.PatchSet {
	a := ps.commit.author
	return &gerrit.PatchSet{
		Number: gerrit.FlexInt(ps.number), Revision: ps.rev, Parents: append([]string(nil), ps.parents...),
		Ref: ps.ref(c.number), Uploader: accountAttr(ps.uploader),
		Author:    &gerrit.Account{Name: a.name, Email: a.email},
		CreatedOn: gerrit.FlexInt(ps.created.Unix()), Kind: ps.kind,
		SizeInsertions: gerrit.FlexInt(ps.ins), SizeDeletions: gerrit.FlexInt(-ps.del),
	}
}

// changeEvent is the common part of a change event.
func (s *Server) changeEvent(typ string, c *change, ps *patchset) *gerrit.Event {
	return &gerrit.Event{
		Type: typ, Project: gerrit.Project(c.project.name), RefName: "refs/heads/" + c.branch,
		ChangeKey: &gerrit.ChangeKey{ID: c.changeID}, Change: s.changeAttr(c), PatchSet: patchSetAttr(c, ps),
	}
}

// refUpdated publishes ref-updated.
func (s *Server) refUpdated(p *project, ref, oldRev, newRev string, who *account) {
	s.emit(&gerrit.Event{
		Type: gerrit.TypeRefUpdated, Submitter: accountAttr(who),
		RefUpdate: &gerrit.RefUpdate{OldRev: oldRev, NewRev: newRev, RefName: ref, Project: gerrit.Project(p.name)},
	})
}
