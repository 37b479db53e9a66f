package gerrit

// This file holds the stream client's pacing and delivery: its Clock, the
// reconnect Backoff, the keepalive loop, and the bounded buffer between
// the SSH reader and the consumer with the items it delivers.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/internal/clock"

	"golang.org/x/crypto/ssh"
)

// Clock is the stream client's source of time: timestamps, keepalive
// intervals and reconnect delays. Tests inject their own; the zero
// StreamConfig uses the system clock.
type Clock = clock.Clock

// Timer is a one-shot timer of a Clock, like time.Timer.
type Timer = clock.Timer

// SystemClock is the Clock of package time.
type SystemClock = clock.System

// Backoff spaces reconnect attempts: the delay starts at Min, doubles with
// every attempt that does not lead to a lasting connection, and is capped
// at Max. Each delay is jittered so that clients restarted together (or
// thrown out together by a Gerrit restart) do not come back in lockstep.
type Backoff struct {
	Min time.Duration // first delay; default 1s
	Max time.Duration // longest delay; default 60s
	// Jitter is the fraction of each delay that is random: a delay d
	// becomes uniform in [d*(1-Jitter), d]. 0 means the default, 0.5; a
	// negative value means none.
	Jitter float64
	// ResetAfter is how long a connection must have stayed up for the next
	// delay to start again from Min. Default: Max.
	ResetAfter time.Duration
	// Rand returns numbers in [0, 1) for the jitter; nil: math/rand/v2.
	Rand func() float64
}

// Defaults of Backoff.
const (
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = time.Minute
	defaultJitter     = 0.5
)

// withDefaults returns b with its zero fields set to their defaults.
func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultBackoffMin
	}
	if b.Max <= 0 {
		b.Max = max(DefaultBackoffMax, b.Min)
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	if b.ResetAfter <= 0 {
		b.ResetAfter = b.Max
	}
	if b.Rand == nil {
		b.Rand = rand.Float64
	}
	return b
}

// Delay returns the delay before reconnect attempt number attempt,
// counting from 0: Min·2^attempt capped at Max, less the jitter.
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.withDefaults()
	d := b.Min
	for i := 0; i < attempt && d < b.Max; i++ {
		if d > b.Max/2 {
			d = b.Max
			break
		}
		d *= 2
	}
	jitter := b.Jitter
	if jitter == 0 {
		jitter = defaultJitter
	}
	if jitter > 0 {
		d -= time.Duration(float64(d) * min(jitter, 1) * b.Rand())
	}
	return d
}

// ResyncReason says why a StreamItem asks for a resync.
type ResyncReason string

// Why events may have been missed. When several causes pile up while the
// consumer is behind, one item is delivered, naming the most significant,
// in this order: connected, dropped-output, overflow.
const (
	ResyncConnected     ResyncReason = "connected"      // a new connection: events were missed while down
	ResyncDroppedOutput ResyncReason = "dropped-output" // Gerrit dropped events for this connection
	ResyncOverflow      ResyncReason = "overflow"       // the consumer was too slow: events were dropped here
)

func (r ResyncReason) rank() int {
	switch r {
	case ResyncConnected:
		return 3
	case ResyncDroppedOutput:
		return 2
	case ResyncOverflow:
		return 1
	}
	return 0
}

// StreamItem is one thing the stream delivers: exactly one of Event,
// Resync and Err is set.
type StreamItem struct {
	// Event is an event of a known type other than dropped-output.
	Event *Event
	// Resync asks the consumer to resynchronise with Gerrit (query what it
	// may have missed) before trusting later events alone.
	Resync ResyncReason
	// Err reports a problem the stream recovers from by itself: a failed
	// connection attempt (see AuthError, HostKeyError), a lost connection
	// (see ErrKeepaliveTimeout), a malformed line (*LineError). Errors are
	// also logged; an error that finds the buffer full is only logged.
	Err error
	// At is when the item was made, by the StreamConfig's Clock.
	At time.Time
}

// Connected reports whether the item announces a new connection.
func (it StreamItem) Connected() bool { return it.Resync == ResyncConnected }

// ErrKeepaliveTimeout is the error of a connection closed because Gerrit
// stopped answering keepalives.
var ErrKeepaliveTimeout = errors.New("gerrit ssh: no reply to keepalives")

// keepalive sends a keepalive every interval and returns
// ErrKeepaliveTimeout when KeepaliveMax intervals pass without the reply
// to the outstanding one. It returns nil when ctx is done.
func (c *StreamConfig) keepalive(ctx context.Context, client *ssh.Client, wg *sync.WaitGroup) error {
	replies := make(chan error, 1)
	inflight, missed := false, 0
	t := c.Clock.NewTimer(c.Keepalive)
	defer func() { t.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-replies:
			if err != nil {
				return fmt.Errorf("gerrit ssh: keepalive: %w", err)
			}
			inflight, missed = false, 0
		case <-t.C():
			if inflight {
				if missed++; missed >= c.KeepaliveMax {
					return fmt.Errorf("%w from %s for %v", ErrKeepaliveTimeout, c.Addr, time.Duration(missed)*c.Keepalive)
				}
			} else {
				inflight = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
					replies <- err
				}()
			}
			t = c.Clock.NewTimer(c.Keepalive)
		}
	}
}

// outbox is the bounded buffer between the stream's reader and its
// consumer. Putting never blocks: an event that finds no room is dropped
// and a resync becomes pending, to be delivered ahead of any later event
// as soon as there is room, so a drop is never silent.
type outbox struct {
	clock   Clock
	log     *slog.Logger
	mu      sync.Mutex
	ring    []StreamItem
	head, n int
	pending ResyncReason // a resync owed to the consumer
	closed  bool
	wake    chan struct{}
}

func newOutbox(size int, clock Clock, log *slog.Logger) *outbox {
	return &outbox{clock: clock, log: log, ring: make([]StreamItem, size), wake: make(chan struct{}, 1)}
}

// put appends it; the caller holds mu and has checked there is room.
func (o *outbox) put(it StreamItem) {
	if it.At.IsZero() {
		it.At = o.clock.Now()
	}
	o.ring[(o.head+o.n)%len(o.ring)] = it
	o.n++
}

func (o *outbox) free() int { return len(o.ring) - o.n }

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// event queues ev, or drops it and owes the consumer a resync.
func (o *outbox) event(ev *Event) {
	o.mu.Lock()
	switch {
	case o.pending != "" && o.free() >= 2:
		o.put(StreamItem{Resync: o.pending})
		o.pending = ""
		o.put(StreamItem{Event: ev})
	case o.pending == "" && o.free() >= 1:
		o.put(StreamItem{Event: ev})
	case o.pending == "":
		o.pending = ResyncOverflow
		o.log.Warn("stream consumer too slow: dropping events until it catches up, then resync",
			"buffer", len(o.ring))
	}
	o.mu.Unlock()
	o.signal()
}

// resync queues a resync for reason r, merged with any pending one.
func (o *outbox) resync(r ResyncReason) {
	o.mu.Lock()
	if o.pending.rank() > r.rank() {
		r = o.pending
	}
	if o.free() >= 1 {
		o.put(StreamItem{Resync: r})
		o.pending = ""
	} else {
		o.pending = r
	}
	o.mu.Unlock()
	o.signal()
}

// err queues an error if there is room; errors are logged anyway.
func (o *outbox) err(err error) {
	o.mu.Lock()
	if o.free() >= 1 {
		o.put(StreamItem{Err: err})
	}
	o.mu.Unlock()
	o.signal()
}

// close makes forward return once everything queued is delivered.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

// forward delivers items to out until close or ctx is done.
func (o *outbox) forward(ctx context.Context, out chan<- StreamItem) {
	for {
		o.mu.Lock()
		var it StreamItem
		ok := true
		switch {
		case o.n > 0:
			it = o.ring[o.head]
			o.ring[o.head] = StreamItem{}
			o.head = (o.head + 1) % len(o.ring)
			o.n--
		case o.pending != "":
			it = StreamItem{Resync: o.pending, At: o.clock.Now()}
			o.pending = ""
		default:
			ok = false
		}
		closed := o.closed
		o.mu.Unlock()
		if !ok {
			if closed {
				return
			}
			select {
			case <-o.wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		select {
		case out <- it:
		case <-ctx.Done():
			return
		}
	}
}
