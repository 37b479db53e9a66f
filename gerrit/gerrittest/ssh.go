package gerrittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHOptions configure an SSHServer.
type SSHOptions struct {
	HostKey   ssh.Signer                 // nil: generate an ed25519 key
	Users     map[string][]ssh.PublicKey // username -> authorised keys
	QueueSize int                        // per-session event queue, default 128 as in Gerrit
}

// DefaultQueueSize is Gerrit's stream-events queue length per session.
const DefaultQueueSize = 128

// SSHServer is Gerrit's SSH daemon as far as stream-events goes: public-key
// authentication, `gerrit stream-events [-s TYPE]...`, keepalive replies,
// a bounded queue per session with dropped-output, and hooks to sever or
// stall every connection.
type SSHServer struct {
	bus       *Bus
	ln        net.Listener
	config    *ssh.ServerConfig
	hostKey   ssh.Signer
	queueSize int

	mu       sync.Mutex
	users    map[string][]ssh.PublicKey
	conns    map[*sshConn]struct{}
	sessions map[*streamSession]struct{}
	lost     int64         // events dropped by sessions that ended
	unstall  chan struct{} // non-nil while stalled; Stall(false) closes it
	closed   bool

	wg     sync.WaitGroup // every goroutine
	sessWG sync.WaitGroup // stream-events sessions
}

type sshConn struct {
	nc   net.Conn
	done chan struct{} // closed when the connection is gone
}

type streamSession struct {
	q    *streamQueue
	quit chan struct{} // closed by Close: end the session cleanly
}

// NewSSHServer starts a server on 127.0.0.1 streaming the events of bus.
// It serves until Close.
func NewSSHServer(bus *Bus, opts SSHOptions) (*SSHServer, error) {
	key := opts.HostKey
	if key == nil {
		var err error
		if key, err = NewClientKey(); err != nil {
			return nil, err
		}
	}
	s := &SSHServer{
		bus: bus, hostKey: key, queueSize: opts.QueueSize,
		users: map[string][]ssh.PublicKey{}, conns: map[*sshConn]struct{}{},
		sessions: map[*streamSession]struct{}{},
	}
	if s.queueSize <= 0 {
		s.queueSize = DefaultQueueSize
	}
	for name, keys := range opts.Users {
		s.users[name] = append([]ssh.PublicKey(nil), keys...)
	}
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: s.checkKey,
		ServerVersion:     "SSH-2.0-GerritCodeReview_3.10.1 (APACHE-SSHD-2.12.0)",
	}
	s.config.AddHostKey(key)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.ln = ln
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// NewClientKey generates an ed25519 key, for clients in tests.
func NewClientKey() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// Addr is the server's host:port.
func (s *SSHServer) Addr() string { return s.ln.Addr().String() }

// HostKey is the server's public host key.
func (s *SSHServer) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// KnownHosts returns a known_hosts line, newline included, for Addr.
func (s *SSHServer) KnownHosts() []byte {
	return []byte(knownhosts.Line([]string{s.Addr()}, s.HostKey()) + "\n")
}

// AddUser authorises key for the user name.
func (s *SSHServer) AddUser(name string, key ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[name] = append(s.users[name], key)
}

func (s *SSHServer) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.users[meta.User()] {
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			return &ssh.Permissions{}, nil
		}
	}
	return nil, fmt.Errorf("gerrittest: key %s is not authorised for %q", ssh.FingerprintSHA256(key), meta.User())
}

// Sever closes every connection abruptly, as a network failure would.
func (s *SSHServer) Sever() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}

// Stall(true) makes every connection, current or new, stop writing events
// and stop answering keepalives, as a hung server or a dead network path
// would; events keep being queued (and dropped beyond the queue).
// Stall(false) resumes.
func (s *SSHServer) Stall(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && s.unstall == nil:
		s.unstall = make(chan struct{})
	case !on && s.unstall != nil:
		close(s.unstall)
		s.unstall = nil
	}
}

// waitUnstalled returns true when the server is not stalled, false if
// stop is closed first.
func (s *SSHServer) waitUnstalled(stop <-chan struct{}) bool {
	for {
		s.mu.Lock()
		ch := s.unstall
		s.mu.Unlock()
		if ch == nil {
			return true
		}
		select {
		case <-ch:
		case <-stop:
			return false
		}
	}
}

// Sessions returns the number of live stream-events sessions.
func (s *SSHServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Pending returns how many events the live sessions hold, queued or being
// written.
func (s *SSHServer) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sess := range s.sessions {
		p, _ := sess.q.stats()
		n += p
	}
	return n
}

// Dropped returns how many events all sessions, past and present, dropped
// because their queue was full.
func (s *SSHServer) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.lost
	for sess := range s.sessions {
		_, l := sess.q.stats()
		n += l
	}
	return n
}

// Close stops the server. Sessions end cleanly (exit status 0, then EOF)
// if their clients keep up; connections are then closed.
func (s *SSHServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for sess := range s.sessions {
		close(sess.quit)
	}
	if s.unstall != nil {
		close(s.unstall)
		s.unstall = nil
	}
	s.mu.Unlock()
	err := s.ln.Close()
	ended := make(chan struct{})
	go func() {
		s.sessWG.Wait()
		close(ended)
	}()
	grace := time.NewTimer(2 * time.Second)
	select {
	case <-ended:
	case <-grace.C:
	}
	grace.Stop()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	<-ended
	return err
}

func (s *SSHServer) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &sshConn{nc: nc, done: make(chan struct{})}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handleConn(c)
	}
}

func (s *SSHServer) handleConn(c *sshConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.nc.Close()
	}()
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c.nc, s.config)
	if err != nil {
		close(c.done)
		return
	}
	_ = c.nc.SetDeadline(time.Time{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for req := range reqs {
			ok := false
			if req.Type == "keepalive@openssh.com" {
				ok = s.waitUnstalled(c.done)
			}
			_ = req.Reply(ok, nil)
		}
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handleSession(c, ch, creqs)
		}()
	}
	// chans is closed: the connection is gone.
	close(c.done)
	sc.Close()
	wg.Wait()
}

// handleSession serves the requests of a session channel; exec is the
// only one granted, once.
func (s *SSHServer) handleSession(c *sshConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	ended := make(chan struct{}) // the client closed the channel
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(ended)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(io.Discard, ch) // stdin, unused
	}()
	started := false
	for req := range reqs {
		var p struct{ Command string }
		if req.Type != "exec" || started || ssh.Unmarshal(req.Payload, &p) != nil {
			_ = req.Reply(false, nil)
			continue
		}
		started = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.exec(c, ch, req, p.Command, ended)
		}()
	}
}

// exec runs a command: `gerrit stream-events`, or a Gerrit-like refusal.
func (s *SSHServer) exec(c *sshConn, ch ssh.Channel, req *ssh.Request, cmd string, ended <-chan struct{}) {
	defer ch.Close()
	types, fatal := parseCommand(cmd)
	if fatal != "" {
		_ = req.Reply(true, nil)
		fmt.Fprintf(ch.Stderr(), "fatal: %s\n", fatal)
		exitStatus(ch, 1)
		return
	}
	// Subscribe before accepting the command, so that a client that saw
	// its exec accepted misses no later event.
	sess := &streamSession{quit: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = req.Reply(false, nil)
		return
	}
	sess.q = s.bus.subscribe(types, s.queueSize)
	s.sessions[sess] = struct{}{}
	s.sessWG.Add(1)
	s.mu.Unlock()
	defer func() {
		s.bus.unsubscribe(sess.q)
		_, lost := sess.q.stats()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.lost += lost
		s.mu.Unlock()
		s.sessWG.Done()
	}()
	_ = req.Reply(true, nil)

	stop := make(chan struct{})
	go func() {
		select {
		case <-c.done:
		case <-ended:
		case <-sess.quit:
		}
		close(stop)
	}()
	for {
		select {
		case <-sess.q.ready:
		case <-stop:
			if isClosed(sess.quit) {
				exitStatus(ch, 0)
			}
			return
		}
		if !s.waitUnstalled(stop) {
			continue
		}
		lines, dropped := sess.q.take()
		if dropped {
			lines = append(lines, droppedOutput())
		}
		for _, l := range lines {
			if !s.waitUnstalled(stop) {
				break
			}
			if _, err := ch.Write(l); err != nil {
				return
			}
		}
		sess.q.written()
	}
}
