package scheduler

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Observer is told what the loop does, for metrics and readiness. Its
// methods are called from the loop's goroutine and must return at once:
// count, never block or call back into the scheduler.
type Observer interface {
	// StreamItem is called for each item read from the Gerrit stream,
	// before it is stored. Lag is the time from Gerrit's eventCreatedOn to
	// its intake (zero when Gerrit did not say).
	StreamItem(it gerrit.StreamItem, lag time.Duration)
	// Turn is called after each committed turn.
	Turn(t TurnStats)
}

// TurnStats describes one committed turn.
type TurnStats struct {
	// Commit is how long the store transaction took, Total the whole turn
	// (re-reads over REST, Apply and commit).
	Commit, Total time.Duration
	// Applied are the events applied, in order; Emitted the actions they
	// produced, notices included.
	Applied []pipeline.Event
	Emitted []pipeline.Action
	// State is the state after the turn. It belongs to the loop: read it
	// during the call only, never keep or change it.
	State *pipeline.State
}

type nopObserver struct{}

func (nopObserver) StreamItem(gerrit.StreamItem, time.Duration) {}
func (nopObserver) Turn(TurnStats)                              {}

// Snapshot is the state as of a committed turn, for readers outside the
// loop (the status page). It is immutable: share it, never change it.
type Snapshot struct {
	// Turn counts the turns that changed the state since Run started
	// (0: the state loaded from the store).
	Turn uint64
	// At is when the turn was committed (the scheduler's clock).
	At    time.Time
	State *pipeline.State
}

// published holds the serialised state of the last turn; it is decoded
// once, by the first reader that asks for it, so that a turn costs only
// the serialisation.
type published struct {
	turn uint64
	at   time.Time
	data []byte

	once sync.Once
	snap *Snapshot
}

// publisher hands snapshots from the loop to readers without locks on the
// loop's side.
type publisher struct {
	cur  atomic.Pointer[published]
	turn uint64 // loop only
}

// publish records the state loaded at start. Called by the loop only.
func (p *publisher) publish(st *pipeline.State, at time.Time) error {
	data, err := st.Marshal()
	if err != nil {
		return err
	}
	p.cur.Store(&published{turn: p.turn, at: at, data: data})
	return nil
}

// publishData records the state after a turn, serialised (the bytes the
// store committed; nobody changes them). Called by the loop only.
func (p *publisher) publishData(data []byte, at time.Time) {
	p.turn++
	p.cur.Store(&published{turn: p.turn, at: at, data: data})
}

// Snapshot returns the state as of the last committed turn, or nil before
// Run loaded the store. It never waits for the loop.
func (s *Scheduler) Snapshot() *Snapshot {
	p := s.pub.cur.Load()
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		st, err := pipeline.UnmarshalState(p.data)
		if err != nil {
			// It was marshalled by the same code a moment ago.
			panic("scheduler: published state does not decode: " + err.Error())
		}
		p.snap = &Snapshot{Turn: p.turn, At: p.at, State: st}
	})
	return p.snap
}
