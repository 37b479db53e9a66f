package gerrit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
)

// streamTimeout bounds every wait: generous, for loaded CI machines.
const streamTimeout = 20 * time.Second

type streamEnv struct {
	srv *gerrittest.SSHServer
	bus *gerrittest.Bus
	cfg gerrit.StreamConfig
}

func newStreamEnv(tb testing.TB, opts gerrittest.SSHOptions) *streamEnv {
	tb.Helper()
	key, err := gerrittest.NewClientKey()
	if err != nil {
		tb.Fatal(err)
	}
	opts.Users = map[string][]ssh.PublicKey{"seakeeper": {key.PublicKey()}}
	bus := gerrittest.NewBus()
	srv, err := gerrittest.NewSSHServer(bus, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	return &streamEnv{srv: srv, bus: bus, cfg: gerrit.StreamConfig{
		Addr: srv.Addr(), User: "seakeeper", Signer: key,
		HostKeyCallback: knownHostsFile(tb, srv.KnownHosts()),
		DialTimeout:     streamTimeout,
		Backoff:         gerrit.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		Logger:          slog.New(slog.DiscardHandler),
	}}
}

func knownHostsFile(tb testing.TB, content []byte) ssh.HostKeyCallback {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "known_hosts")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		tb.Fatal(err)
	}
	check, err := gerrit.KnownHosts(path)
	if err != nil {
		tb.Fatal(err)
	}
	return check
}

// run starts cfg; the cleanup stops it and waits for the channel to close.
func run(tb testing.TB, cfg gerrit.StreamConfig) (<-chan gerrit.StreamItem, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	items := cfg.Run(ctx)
	tb.Cleanup(func() {
		cancel()
		drain(tb, items)
	})
	return items, cancel
}

func drain(tb testing.TB, items <-chan gerrit.StreamItem) {
	tb.Helper()
	timeout := time.After(streamTimeout)
	for {
		select {
		case _, ok := <-items:
			if !ok {
				return
			}
		case <-timeout:
			tb.Fatal("the stream did not close after cancel")
		}
	}
}

func next(tb testing.TB, items <-chan gerrit.StreamItem) gerrit.StreamItem {
	tb.Helper()
	select {
	case it, ok := <-items:
		if !ok {
			tb.Fatal("the stream closed")
		}
		return it
	case <-time.After(streamTimeout):
		tb.Fatal("no stream item in time")
	}
	return gerrit.StreamItem{}
}

// until returns the first item for which stop is true, failing on an
// event before it; it returns the errors it passed.
func until(tb testing.TB, items <-chan gerrit.StreamItem, stop func(gerrit.StreamItem) bool) (gerrit.StreamItem, []error) {
	tb.Helper()
	var errs []error
	for {
		it := next(tb, items)
		switch {
		case stop(it):
			return it, errs
		case it.Err != nil:
			errs = append(errs, it.Err)
		default:
			tb.Fatalf("unexpected item %+v", it)
		}
	}
}

func connected(tb testing.TB, items <-chan gerrit.StreamItem) []error {
	tb.Helper()
	_, errs := until(tb, items, gerrit.StreamItem.Connected)
	return errs
}

func event(typ string, n int) *gerrit.Event {
	return &gerrit.Event{Type: typ, Change: &gerrit.Change{Project: "p", Branch: "master", Number: gerrit.FlexInt(n)}}
}

func wantEvent(tb testing.TB, items <-chan gerrit.StreamItem, typ string, n int) {
	tb.Helper()
	it := next(tb, items)
	if it.Event == nil || it.Event.Type != typ || it.Event.Change.Number.Int() != n || it.At.IsZero() {
		tb.Fatalf("got %+v, want a %s event of change %d", it, typ, n)
	}
}

func TestStreamEventsArriveInOrder(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	items, _ := run(t, e.cfg)
	if errs := connected(t, items); len(errs) > 0 {
		t.Fatalf("errors before connecting: %v", errs)
	}
	for i := range 50 {
		e.bus.Publish(event(gerrit.TypePatchsetCreated, i))
	}
	for i := range 50 {
		wantEvent(t, items, gerrit.TypePatchsetCreated, i)
	}
}

func TestStreamSubscribesToEventTypes(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	e.cfg.EventTypes = []string{gerrit.TypeCommentAdded, gerrit.TypeChangeMerged}
	items, _ := run(t, e.cfg)
	connected(t, items)
	types := []string{gerrit.TypePatchsetCreated, gerrit.TypeCommentAdded, gerrit.TypeRefUpdated,
		gerrit.TypeChangeMerged, gerrit.TypeReviewerAdded, gerrit.TypeCommentAdded}
	for i, typ := range types {
		e.bus.Publish(event(typ, i))
	}
	for _, i := range []int{1, 3, 5} {
		wantEvent(t, items, types[i], i)
	}
}

func TestStreamMalformedLineIsReportedAndSkipped(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	items, _ := run(t, e.cfg)
	connected(t, items)
	e.bus.PublishRaw([]byte(`{"type": "comment-added", "change": `))
	e.bus.Publish(event(gerrit.TypeCommentAdded, 2))
	var le *gerrit.LineError
	if it := next(t, items); !errors.As(it.Err, &le) {
		t.Fatalf("got %+v, want a *LineError", it)
	}
	wantEvent(t, items, gerrit.TypeCommentAdded, 2)
}

func TestStreamRefusesUnknownHostKey(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	otherKey, err := gerrittest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ssh.NewPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	served := ssh.FingerprintSHA256(e.srv.HostKey())
	for _, tc := range []struct {
		name, knownHosts string
		want             []string
	}{
		{"unknown host", knownhosts.Line([]string{"gerrit.example.com:29418"}, e.srv.HostKey()),
			[]string{"is unknown", e.srv.Addr(), "ssh-ed25519 " + served}},
		{"other key", knownhosts.Line([]string{e.srv.Addr()}, otherKey.PublicKey()),
			[]string{"does not match", e.srv.Addr(), "ssh-ed25519 " + served, ssh.FingerprintSHA256(otherKey.PublicKey())}},
		{"other key type", knownhosts.Line([]string{e.srv.Addr()}, ecPub),
			[]string{"does not match", e.srv.Addr(), "offers no key of the types", "ecdsa-sha2-nistp256 " + ssh.FingerprintSHA256(ecPub)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.cfg
			cfg.HostKeyCallback = knownHostsFile(t, []byte(tc.knownHosts+"\n"))
			items, cancel := run(t, cfg)
			for range 2 { // refused, and refused again after a backoff
				it := next(t, items)
				var he *gerrit.HostKeyError
				if !errors.As(it.Err, &he) {
					t.Fatalf("got %+v, want a *HostKeyError", it)
				}
				t.Logf("reported: %v", he)
				for _, w := range tc.want {
					if !strings.Contains(he.Error(), w) {
						t.Errorf("%q does not say %q", he, w)
					}
				}
			}
			cancel()
			drain(t, items)
			if n := e.srv.Sessions(); n != 0 {
				t.Errorf("%d sessions started", n)
			}
		})
	}
}

func TestStreamWrongClientKeyIsRefusedThenRetried(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	rotated, err := gerrittest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Signer = rotated
	items, _ := run(t, e.cfg)
	var ae *gerrit.AuthError
	if it := next(t, items); !errors.As(it.Err, &ae) ||
		!strings.Contains(ae.Error(), `user "seakeeper"`) ||
		!strings.Contains(ae.Error(), ssh.FingerprintSHA256(rotated.PublicKey())) {
		t.Fatalf("got %+v, want an *AuthError naming the user and key", it)
	} else {
		t.Logf("reported: %v", it.Err)
	}
	// The operator registers the new key: the stream comes up by itself.
	e.srv.AddUser("seakeeper", rotated.PublicKey())
	connected(t, items)
}

func TestStreamReconnectsAfterSever(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	items, _ := run(t, e.cfg)
	connected(t, items)
	e.bus.Publish(event(gerrit.TypeCommentAdded, 1))
	wantEvent(t, items, gerrit.TypeCommentAdded, 1)
	e.srv.Sever()
	if errs := connected(t, items); len(errs) == 0 {
		t.Error("the lost connection was not reported")
	} else {
		t.Logf("reported: %v", errs)
	}
	e.bus.Publish(event(gerrit.TypeCommentAdded, 2))
	wantEvent(t, items, gerrit.TypeCommentAdded, 2)
}

func TestStreamKeepaliveDetectsStall(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	e.cfg.Keepalive = 100 * time.Millisecond
	items, _ := run(t, e.cfg)
	connected(t, items)
	e.srv.Stall(true)
	if it := next(t, items); !errors.Is(it.Err, gerrit.ErrKeepaliveTimeout) {
		t.Fatalf("got %+v, want ErrKeepaliveTimeout", it)
	} else {
		t.Logf("reported: %v", it.Err)
	}
	e.srv.Stall(false)
	connected(t, items)
	e.bus.Publish(event(gerrit.TypeChangeMerged, 3))
	wantEvent(t, items, gerrit.TypeChangeMerged, 3)
}

func TestStreamDroppedOutputAsksForResync(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	items, _ := run(t, e.cfg)
	connected(t, items)
	e.srv.Stall(true)
	for i := range 1000 {
		e.bus.Publish(event(gerrit.TypePatchsetCreated, i))
	}
	e.srv.Stall(false)
	// The server's queue holds 128 events; the rest are dropped.
	for i := range gerrittest.DefaultQueueSize {
		wantEvent(t, items, gerrit.TypePatchsetCreated, i)
	}
	if it := next(t, items); it.Resync != gerrit.ResyncDroppedOutput || it.Event != nil {
		t.Fatalf("got %+v, want a dropped-output resync", it)
	}
	e.bus.Publish(event(gerrit.TypeCommentAdded, 1000))
	wantEvent(t, items, gerrit.TypeCommentAdded, 1000)
}

// TestStreamSlowConsumerOverflows blocks the consumer while 8 MB of events,
// four times the SSH window, go through: had the reader blocked, the server
// would have blocked on the window and its queue would have overflowed.
func TestStreamSlowConsumerOverflows(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	e.cfg.Buffer = 4
	items, _ := run(t, e.cfg)
	waitFor(t, "the session", func() bool { return e.srv.Sessions() == 1 })
	msg := strings.Repeat("A commit message line that goes on.\n", 8<<10/37)
	const n = 1000
	for i := 0; i < n; i += 32 {
		for j := i; j < min(i+32, n); j++ {
			ev := event(gerrit.TypePatchsetCreated, j)
			ev.Change.CommitMessage = msg
			e.bus.Publish(ev)
		}
		waitFor(t, "the server to write its queue", func() bool { return e.srv.Pending() == 0 })
	}
	if d := e.srv.Dropped(); d != 0 {
		t.Fatalf("the server dropped %d events: the client's reader fell behind", d)
	}
	// Nothing is dropped silently: a gap in the events is announced by a
	// resync before the first event after it. Then a marker event gets
	// through; it is published again if it fell into an overflow itself.
	if it := next(t, items); !it.Connected() {
		t.Fatalf("first item %+v, want connected", it)
	}
	e.bus.Publish(event(gerrit.TypeCommentAdded, n))
	last, resyncs, events := -1, 0, 0
	resynced := false
	deadline := time.After(streamTimeout)
	for marker := n + 1; last < n; {
		var it gerrit.StreamItem
		select {
		case it = <-items:
		case <-time.After(time.Second):
			e.bus.Publish(event(gerrit.TypeCommentAdded, marker))
			marker++
			continue
		case <-deadline:
			t.Fatal("the marker event did not arrive")
		}
		switch {
		case it.Resync == gerrit.ResyncOverflow:
			resyncs++
			resynced = true
		case it.Event == nil:
			t.Fatalf("unexpected item %+v", it)
		case it.Event.Change.Number.Int() <= last:
			t.Fatalf("change %d after %d", it.Event.Change.Number, last)
		case it.Event.Change.Number.Int() != last+1 && !resynced:
			t.Fatalf("change %d after %d without a resync", it.Event.Change.Number, last)
		default:
			last, resynced = it.Event.Change.Number.Int(), false
			events++
		}
	}
	if resyncs == 0 || events > n/2 {
		t.Errorf("%d events and %d overflow resyncs through a buffer of 4: want few events, some resyncs", events, resyncs)
	}
	t.Logf("%d events and %d overflow resyncs delivered", events, resyncs)
}

func TestStreamStopsCleanly(t *testing.T) {
	e := newStreamEnv(t, gerrittest.SSHOptions{})
	baseline := runtime.NumGoroutine()
	e.cfg.Keepalive = 50 * time.Millisecond
	items, cancel := run(t, e.cfg)
	connected(t, items)
	e.bus.Publish(event(gerrit.TypeCommentAdded, 1))
	wantEvent(t, items, gerrit.TypeCommentAdded, 1)
	cancel()
	drain(t, items)
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= baseline })

	// Also while waiting to reconnect.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Addr = ln.Addr().String()
	ln.Close()
	e.cfg.Backoff = gerrit.Backoff{Min: time.Hour}
	items, cancel = run(t, e.cfg)
	if it := next(t, items); it.Err == nil {
		t.Fatalf("got %+v, want a connection error", it)
	}
	cancel()
	drain(t, items)
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestStreamInvalidConfig(t *testing.T) {
	items := gerrit.StreamConfig{Addr: "localhost:29418", EventTypes: []string{"a b"}}.Run(context.Background())
	it := next(t, items)
	if it.Err == nil || !strings.Contains(it.Err.Error(), "User") || !strings.Contains(it.Err.Error(), "HostKeyCallback") {
		t.Fatalf("got %+v, want an error naming the missing fields", it)
	}
	drain(t, items)
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(streamTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			tb.Fatalf("timed out waiting for %s\n%s", what, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := gerrit.Backoff{Min: time.Second, Max: 20 * time.Second, Jitter: -1}
	want := []time.Duration{1, 2, 4, 8, 16, 20, 20}
	for i, w := range want {
		if got := b.Delay(i); got != w*time.Second {
			t.Errorf("Delay(%d) = %v, want %v", i, got, w*time.Second)
		}
	}
	for _, r := range []float64{0, 0.5, 0.999} {
		b := gerrit.Backoff{Min: time.Second, Max: 8 * time.Second, Rand: func() float64 { return r }}
		for i := range 6 {
			d, full := b.Delay(i), min(time.Second<<i, 8*time.Second)
			if d > full || d < full/2 {
				t.Errorf("rand %v: Delay(%d) = %v, want within [%v, %v]", r, i, d, full/2, full)
			}
		}
	}
	if d := (gerrit.Backoff{}).Delay(100); d > gerrit.DefaultBackoffMax || d < gerrit.DefaultBackoffMax/2 {
		t.Errorf("default Delay(100) = %v", d)
	}
}

// recordingClock records the reconnect delays and lets them pass at once;
// timers of a Keepalive-long hour are real.
type recordingClock struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (c *recordingClock) Now() time.Time { return time.Now() }

func (c *recordingClock) NewTimer(d time.Duration) gerrit.Timer {
	if d >= time.Hour {
		return gerrit.SystemClock{}.NewTimer(d)
	}
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.mu.Unlock()
	return gerrit.SystemClock{}.NewTimer(0)
}

func (c *recordingClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

func TestStreamBackoffGrowsCapsAndResets(t *testing.T) {
	ms := time.Millisecond
	t.Run("grows and caps", func(t *testing.T) {
		e := newStreamEnv(t, gerrittest.SSHOptions{})
		clock := &recordingClock{}
		e.cfg.Clock, e.cfg.Keepalive = clock, time.Hour
		e.cfg.Backoff = gerrit.Backoff{Min: 10 * ms, Max: 80 * ms, Jitter: -1}
		e.cfg.Addr = e.srv.Addr()
		e.srv.Close() // connection refused from now on
		_, cancel := run(t, e.cfg)
		waitFor(t, "six attempts", func() bool { return len(clock.recorded()) >= 6 })
		cancel()
		want := []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 80 * ms, 80 * ms}
		if got := clock.recorded()[:6]; !slices.Equal(got, want) {
			t.Errorf("delays %v, want %v", got, want)
		}
	})
	for _, tc := range []struct {
		name       string
		resetAfter time.Duration
		want       []time.Duration
	}{
		{"a lasting connection resets it", time.Nanosecond, []time.Duration{10 * ms, 10 * ms}},
		{"a short one does not", time.Hour, []time.Duration{10 * ms, 20 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newStreamEnv(t, gerrittest.SSHOptions{})
			clock := &recordingClock{}
			e.cfg.Clock, e.cfg.Keepalive = clock, time.Hour
			e.cfg.Backoff = gerrit.Backoff{Min: 10 * ms, Max: 80 * ms, Jitter: -1, ResetAfter: tc.resetAfter}
			items, _ := run(t, e.cfg)
			connected(t, items)
			for range 2 {
				e.srv.Sever()
				connected(t, items)
			}
			if got := clock.recorded(); !slices.Equal(got, tc.want) {
				t.Errorf("delays %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkReconnectAfterSever measures the time from Sever to the
// Connected item, with the reconnect delay at 10ms less jitter (5–10ms).
// It also reports the part spent in that delay and the rest: noticing the
// loss, TCP connect, SSH handshake and starting stream-events.
func BenchmarkReconnectAfterSever(b *testing.B) {
	e := newStreamEnv(b, gerrittest.SSHOptions{})
	clock := &delayClock{}
	e.cfg.Clock = clock
	e.cfg.Backoff = gerrit.Backoff{Min: 10 * time.Millisecond, Max: 10 * time.Millisecond}
	items, _ := run(b, e.cfg)
	connected(b, items)
	clock.total.Store(0)
	for b.Loop() {
		e.srv.Sever()
		connected(b, items)
	}
	delay := time.Duration(clock.total.Load())
	b.ReportMetric(float64(delay.Microseconds())/1000/float64(b.N), "delay-ms/op")
	b.ReportMetric(float64((b.Elapsed()-delay).Microseconds())/1000/float64(b.N), "connect-ms/op")
}

// delayClock is the system clock, adding up the reconnect delays.
type delayClock struct {
	gerrit.SystemClock
	total atomic.Int64
}

func (c *delayClock) NewTimer(d time.Duration) gerrit.Timer {
	if d < time.Second { // not a keepalive
		c.total.Add(int64(d))
	}
	return c.SystemClock.NewTimer(d)
}
