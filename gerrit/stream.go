package gerrit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// StreamConfig configures the client of `gerrit stream-events` over SSH.
// Run starts it.
type StreamConfig struct {
	Addr   string     // host:port of Gerrit's SSH daemon
	User   string     // the account Seakeeper acts as
	Signer ssh.Signer // its private key, see LoadSigner
	// HostKeyCallback checks Gerrit's host key (see KnownHosts). It is
	// required: the client never talks to a server it cannot verify.
	HostKeyCallback ssh.HostKeyCallback
	// EventTypes are passed as `-s` filters; empty means every type.
	EventTypes []string
	// Keepalive is the interval of keepalive@openssh.com requests (default
	// 15s). When KeepaliveMax (default 3) intervals pass without the reply
	// to one, the connection is declared dead, closed and reopened.
	Keepalive    time.Duration
	KeepaliveMax int
	// DialTimeout bounds the TCP connect and SSH handshake (default 30s).
	DialTimeout time.Duration
	// Backoff spaces reconnect attempts.
	Backoff Backoff
	// Buffer is how many items are held for a slow consumer (default 1024).
	// Events that find it full are dropped and replaced by one Resync item.
	Buffer int
	Clock  Clock        // default SystemClock
	Logger *slog.Logger // default slog.Default()
}

// Defaults of StreamConfig.
const (
	DefaultKeepalive    = 15 * time.Second
	DefaultKeepaliveMax = 3
	DefaultDialTimeout  = 30 * time.Second
	DefaultBuffer       = 1024
)

// command is the stream-events command line.
func (c *StreamConfig) command() string {
	var b strings.Builder
	b.WriteString("gerrit stream-events")
	for _, t := range c.EventTypes {
		b.WriteString(" -s " + t)
	}
	return b.String()
}

// Run connects and keeps connected until ctx is done, then closes the
// returned channel. After every (re)connect the first item is
// Resync: ResyncConnected. The client never blocks on the consumer: when
// Buffer items are waiting, events are dropped and a single
// ResyncOverflow item is delivered as soon as there is room. An invalid
// config yields one Err item and the channel is closed.
func (c StreamConfig) Run(ctx context.Context) <-chan StreamItem {
	out := make(chan StreamItem)
	c, err := c.withDefaults()
	box := newOutbox(c.Buffer, c.Clock, c.Logger)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		box.forward(ctx, out)
	}()
	go func() {
		if err != nil {
			box.err(err)
		} else {
			c.supervise(ctx, box)
		}
		box.close()
		wg.Wait()
		close(out)
	}()
	return out
}

// supervise connects, reconnects with backoff, and returns when ctx is done.
func (c *StreamConfig) supervise(ctx context.Context, box *outbox) {
	probe := probeKey()
	attempt := 0
	for {
		lived, err := c.connect(ctx, box, probe)
		if ctx.Err() != nil {
			return
		}
		if lived >= c.Backoff.ResetAfter {
			attempt = 0
		}
		delay := c.Backoff.Delay(attempt)
		attempt++
		level := slog.LevelWarn
		var ae *AuthError
		var he *HostKeyError
		if errors.As(err, &ae) || errors.As(err, &he) {
			level = slog.LevelError // an operator must act: say so on the first attempt
		}
		c.Logger.Log(ctx, level, "stream-events connection failed", "err", err,
			"attempt", attempt, "retry_in", delay)
		box.err(err)
		t := c.Clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// connect runs one connection: dial, start stream-events, read until it
// fails. It returns how long the stream was up (negative if it never
// was) and why it ended.
func (c *StreamConfig) connect(ctx context.Context, box *outbox, probe ssh.PublicKey) (time.Duration, error) {
	client, err := c.dial(ctx, probe)
	if err != nil {
		return -1, err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return -1, fmt.Errorf("gerrit ssh: open session: %w", err)
	}
	// Keep stdin open, as OpenSSH does without -n: some servers end a
	// command whose input ends.
	_, err0 := sess.StdinPipe()
	stdout, err1 := sess.StdoutPipe()
	stderr, err2 := sess.StderrPipe()
	if err := errors.Join(err0, err1, err2); err != nil {
		return -1, fmt.Errorf("gerrit ssh: session pipes: %w", err)
	}
	cmd := c.command()
	if err := sess.Start(cmd); err != nil {
		return -1, fmt.Errorf("gerrit ssh: start %q: %w", cmd, err)
	}
	start := c.Clock.Now()
	c.Logger.Info("stream-events connected", "command", cmd)
	box.resync(ResyncConnected)

	var wg sync.WaitGroup
	defer wg.Wait() // after client.Close, deferred above, runs first
	defer client.Close()
	var errText tail
	waited := make(chan error, 1)
	read := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(&errText, stderr)
		waited <- sess.Wait()
	}()
	go func() {
		defer wg.Done()
		read <- c.read(stdout, box)
	}()
	kaCtx, stopKA := context.WithCancel(ctx)
	defer stopKA()
	kaErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		kaErr <- c.keepalive(kaCtx, client, &wg)
	}()

	select {
	case <-ctx.Done():
		err = ctx.Err()
	case err = <-kaErr:
	case err = <-read:
		// The output ended: say why, if the server says so in time.
		t := c.Clock.NewTimer(c.Keepalive)
		select {
		case werr := <-waited:
			if werr != nil {
				err = werr
			}
		case <-t.C():
		case <-ctx.Done():
		}
		t.Stop()
		var missing *ssh.ExitMissingError
		if errors.As(err, &missing) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("connection lost: %w", err)
		}
		err = fmt.Errorf("gerrit ssh: stream-events on %s ended: %w", c.Addr, err)
		if s := errText.String(); s != "" {
			err = fmt.Errorf("%w: %s", err, s)
		}
	}
	return c.Clock.Now().Sub(start), err
}

// dial connects and authenticates, within DialTimeout.
func (c *StreamConfig) dial(ctx context.Context, probe ssh.PublicKey) (*ssh.Client, error) {
	d := net.Dialer{Timeout: c.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("gerrit ssh: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(c.DialTimeout))
	algos, known := hostKeyAlgorithms(c.HostKeyCallback, c.Addr, probe)
	cfg := &ssh.ClientConfig{
		User:              c.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(c.Signer)},
		HostKeyCallback:   c.HostKeyCallback,
		HostKeyAlgorithms: algos,
		ClientVersion:     "SSH-2.0-Seakeeper",
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, c.Addr, cfg)
	if err != nil {
		conn.Close()
		var he *HostKeyError
		switch {
		case errors.As(err, &he):
			return nil, he
		case known != nil && strings.Contains(err.Error(), "no common algorithm for host key"):
			known.KeyType, known.Fingerprint, known.noneOffered = "", "", true
			return nil, known
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, &AuthError{Addr: c.Addr, User: c.User,
				Fingerprint: ssh.FingerprintSHA256(c.Signer.PublicKey()), Err: err}
		}
		return nil, fmt.Errorf("gerrit ssh: handshake with %s: %w", c.Addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// read decodes the output of stream-events into box until it fails.
func (c *StreamConfig) read(r io.Reader, box *outbox) error {
	dec := NewDecoder(r)
	for {
		ev, err := dec.Next()
		var le *LineError
		switch {
		case errors.As(err, &le):
			c.Logger.Warn("malformed stream-events line", "err", le)
			box.err(le)
		case err != nil:
			return err
		case ev.Type == TypeDroppedOutput:
			c.Logger.Warn("gerrit dropped events for this stream: resync")
			box.resync(ResyncDroppedOutput)
		default:
			box.event(ev)
		}
	}
}

// tail keeps the first bytes written to it: the stderr of the command.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p[:min(len(p), 1024-len(t.buf))]...)
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
