package gerrittest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"golang.org/x/crypto/ssh"
)

// Bus fans events out to the stream-events sessions of one or more SSH
// servers. Publish never blocks: each session has a bounded queue, and a
// session that falls behind loses events and is told so with a
// dropped-output event, as with real Gerrit.
type Bus struct {
	mu     sync.Mutex
	queues map[*streamQueue]struct{}
}

// NewBus returns a bus without subscribers.
func NewBus() *Bus { return &Bus{queues: map[*streamQueue]struct{}{}} }

// Publish marshals ev once to a JSON line and queues it for every session
// whose -s filters match its type. An event without eventCreatedOn is
// stamped with the current time; ev itself is not modified.
func (b *Bus) Publish(ev *gerrit.Event) {
	if ev.EventCreatedOn == 0 {
		stamped := *ev
		stamped.EventCreatedOn = gerrit.FlexInt(time.Now().Unix())
		ev = &stamped
	}
	line, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("gerrittest: marshal %s event: %v", ev.Type, err))
	}
	b.publish(ev.Type, append(line, '\n'))
}

// PublishRaw queues line, a newline is added, for every session whatever
// its filters: a way for tests to send what Gerrit would not, such as a
// malformed line.
func (b *Bus) PublishRaw(line []byte) {
	b.publish("", append(append([]byte(nil), line...), '\n'))
}

func (b *Bus) publish(typ string, line []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for q := range b.queues {
		q.offer(typ, line)
	}
}

// subscribe returns a queue of size lines that receives the events of the
// given types (all types if none) until unsubscribe.
func (b *Bus) subscribe(types []string, size int) *streamQueue {
	q := &streamQueue{size: size, ready: make(chan struct{}, 1)}
	if len(types) > 0 {
		q.types = map[string]bool{}
		for _, t := range types {
			q.types[t] = true
		}
	}
	b.mu.Lock()
	b.queues[q] = struct{}{}
	b.mu.Unlock()
	return q
}

func (b *Bus) unsubscribe(q *streamQueue) {
	b.mu.Lock()
	delete(b.queues, q)
	b.mu.Unlock()
}

// streamQueue is the bounded queue of one stream-events session. When it
// is full further events are dropped and the writer, once it has written
// what was queued, writes one dropped-output event: everything it took in
// the same batch was queued before the first drop, so the marker sits
// where the gap is.
type streamQueue struct {
	types map[string]bool // nil: every type
	size  int
	ready chan struct{} // signalled when lines are queued

	mu      sync.Mutex
	lines   [][]byte
	writing int   // lines taken and not yet written
	dropped bool  // events were dropped since the last take
	lost    int64 // events dropped in all
}

func (q *streamQueue) offer(typ string, line []byte) {
	if typ != "" && q.types != nil && !q.types[typ] {
		return
	}
	q.mu.Lock()
	if len(q.lines) >= q.size {
		q.dropped = true
		q.lost++
	} else {
		q.lines = append(q.lines, line)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take empties the queue: the lines to write, and whether the writer must
// follow them with dropped-output.
func (q *streamQueue) take() (lines [][]byte, dropped bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	lines, dropped = q.lines, q.dropped
	q.lines, q.dropped, q.writing = nil, false, len(lines)
	return lines, dropped
}

// written tells the queue that the lines of the last take are written.
func (q *streamQueue) written() {
	q.mu.Lock()
	q.writing = 0
	q.mu.Unlock()
}

// stats returns how many events are queued or being written, and how many
// were dropped in all.
func (q *streamQueue) stats() (pending int, lost int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.lines) + q.writing, q.lost
}

// droppedOutput is the line Gerrit writes after dropping events.
func droppedOutput() []byte {
	return fmt.Appendf(nil, `{"type":"dropped-output","eventCreatedOn":%d}`+"\n", time.Now().Unix())
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func exitStatus(ch ssh.Channel, code uint32) {
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{code}))
}

// parseCommand reads `gerrit stream-events [-s TYPE | --subscribe TYPE]...`
// and returns the types, or the message with which Gerrit refuses the
// command line.
func parseCommand(line string) (types []string, fatal string) {
	args := strings.Fields(line)
	switch {
	case len(args) == 0:
		return nil, "no command given"
	case args[0] != "gerrit":
		return nil, args[0] + ": not found"
	case len(args) == 1:
		return nil, "gerrit: no command given"
	case args[1] != "stream-events":
		return nil, "gerrit: " + args[1] + ": not found"
	}
	for i := 2; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-s" || a == "--subscribe":
			if i+1 == len(args) {
				return nil, `Option "--subscribe (-s)" takes an operand`
			}
			i++
			types = append(types, strings.Trim(args[i], `"'`))
		case strings.HasPrefix(a, "--subscribe="):
			types = append(types, strings.Trim(strings.TrimPrefix(a, "--subscribe="), `"'`))
		default:
			return nil, fmt.Sprintf("%q is not a valid option", a)
		}
	}
	return types, ""
}
