package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// InboxEntry is a received event not yet applied.
type InboxEntry struct {
	// Seq is the entry's sequence number: increasing in the order events
	// were appended, never reused.
	Seq   uint64
	Event pipeline.Event
}

// Turn is what one scheduler turn makes durable. Commit writes all of it in
// one transaction, or nothing.
type Turn struct {
	// State is the state after the turn; nil leaves the stored state as it
	// is.
	State *pipeline.State
	// StateData, when set, is State already serialised (State.Marshal):
	// a caller that needs the bytes too serialises only once.
	StateData []byte
	// Consumed are the inbox entries the turn applied; they are removed.
	// An entry that is not in the inbox fails the whole Commit: applying an
	// event twice is a bug the store refuses to make durable.
	Consumed []uint64
	// Emitted are the actions the turn emitted, in order; they join the
	// outbox. An action whose ID is already in the outbox is left where and
	// as it is.
	Emitted []pipeline.Action
	// Confirmed are IDs of actions carried out; they leave the outbox (after
	// Emitted joined it). Unknown IDs are ignored: confirming twice is fine.
	Confirmed []string
	// Finished are items that left their pipeline, for the history.
	Finished []HistoryEntry
}

// Commit makes a turn durable: one bbolt transaction, synced to disk before
// it returns (see the package doc). On error nothing of the turn is stored.
func (s *Store) Commit(t Turn) error {
	state := t.StateData
	if t.State != nil && state == nil {
		var err error
		if state, err = t.State.Marshal(); err != nil {
			return fmt.Errorf("store %s: commit: the pipeline state does not serialise: %w", s.path, err)
		}
	}
	emitted, err := encodeActions(t.Emitted)
	if err != nil {
		return fmt.Errorf("store %s: commit: %w", s.path, err)
	}
	finished, err := encodeHistory(t.Finished)
	if err != nil {
		return fmt.Errorf("store %s: commit: %w", s.path, err)
	}
	if state == nil && len(t.Consumed) == 0 && len(emitted) == 0 && len(t.Confirmed) == 0 && len(finished) == 0 {
		return nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if state != nil {
			b := tx.Bucket(bucketState)
			if err := b.Put(keyStateVersion, []byte(strconv.Itoa(t.State.Version))); err != nil {
				return err
			}
			if err := b.Put(keyState, state); err != nil {
				return err
			}
		}
		if err := s.stage("state"); err != nil {
			return err
		}
		inbox := tx.Bucket(bucketInbox)
		for _, seq := range t.Consumed {
			k := seqKey(seq)
			if inbox.Get(k) == nil {
				return fmt.Errorf("inbox entry %d is not in the inbox (consumed twice?)", seq)
			}
			if err := inbox.Delete(k); err != nil {
				return err
			}
		}
		if err := s.stage("inbox"); err != nil {
			return err
		}
		if err := addOutbox(tx.Bucket(bucketOutbox), emitted); err != nil {
			return err
		}
		if err := removeOutbox(tx.Bucket(bucketOutbox), t.Confirmed); err != nil {
			return err
		}
		if err := s.stage("outbox"); err != nil {
			return err
		}
		if err := appendHistory(tx.Bucket(bucketHistory), finished, s.opts.HistoryPerProject); err != nil {
			return err
		}
		return s.stage("history")
	})
	if err != nil {
		return fmt.Errorf("store %s: commit: %w", s.path, err)
	}
	return nil
}

func (s *Store) stage(name string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(name)
}

// Load returns the last committed state, or pipeline.NewState() for a store
// that never had one. A state of another version gives ErrSchema, one that
// does not decode ErrCorrupt.
func (s *Store) Load() (*pipeline.State, error) {
	s.mu.Lock()
	pre, preTx := s.preloaded, s.preloadTx
	s.preloaded = nil
	s.mu.Unlock()
	var st *pipeline.State
	err := s.db.View(func(tx *bolt.Tx) error {
		if pre != nil && tx.ID() == preTx {
			st = pre // decoded by Open's check from this very transaction
			return nil
		}
		b := tx.Bucket(bucketState)
		data := b.Get(keyState)
		if data == nil {
			st = pipeline.NewState()
			return nil
		}
		var err error
		st, err = decodeState(s.path, b.Get(keyStateVersion), data)
		return err
	})
	return st, err
}

// AppendInbox writes received events to the inbox, in order, in one
// transaction, and returns their sequence numbers. When it returns nil the
// events are on disk.
func (s *Store) AppendInbox(evs ...pipeline.Event) ([]uint64, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	vals := make([][]byte, len(evs))
	for i := range evs {
		v, err := json.Marshal(&evs[i])
		if err != nil {
			return nil, fmt.Errorf("store %s: inbox: event %d does not serialise: %w", s.path, i, err)
		}
		vals[i] = v
	}
	seqs := make([]uint64, len(evs))
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketInbox)
		for i, v := range vals {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
			seqs[i] = seq
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: inbox: %w", s.path, err)
	}
	return seqs, nil
}

// Inbox returns up to limit entries (all when limit <= 0), oldest first.
func (s *Store) Inbox(limit int) ([]InboxEntry, error) {
	var out []InboxEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketInbox).Cursor()
		for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			e := InboxEntry{Seq: binary.BigEndian.Uint64(k)}
			if err := json.Unmarshal(v, &e.Event); err != nil {
				return corruptf(s.path, err, "inbox entry %d does not decode", e.Seq)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Outbox returns the actions emitted and not yet confirmed, in the order
// they were first emitted.
func (s *Store) Outbox() ([]pipeline.Action, error) {
	type entry struct {
		order uint64
		a     pipeline.Action
	}
	var es []entry
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			order, a, err := decodeOutbox(v)
			if err != nil {
				return corruptf(s.path, err, "outbox entry %q does not decode", k)
			}
			es = append(es, entry{order, a})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(es, func(i, j int) bool { return es[i].order < es[j].order })
	out := make([]pipeline.Action, len(es))
	for i := range es {
		out[i] = es[i].a
	}
	return out, nil
}

// Confirm removes carried-out actions from the outbox, outside a turn.
// Unknown IDs are ignored. Prefer Turn.Confirmed: it costs no extra sync.
func (s *Store) Confirm(ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error { return removeOutbox(tx.Bucket(bucketOutbox), ids) })
	if err != nil {
		return fmt.Errorf("store %s: confirm: %w", s.path, err)
	}
	return nil
}

type encodedAction struct {
	id   string
	json []byte
}

func encodeActions(as []pipeline.Action) ([]encodedAction, error) {
	out := make([]encodedAction, 0, len(as))
	for i := range as {
		if as[i].ID == "" {
			return nil, fmt.Errorf("emitted action %d (%s) has no ID", i, as[i].Kind)
		}
		v, err := json.Marshal(&as[i])
		if err != nil {
			return nil, fmt.Errorf("action %s does not serialise: %w", as[i].ID, err)
		}
		out = append(out, encodedAction{as[i].ID, v})
	}
	return out, nil
}

// addOutbox stores each action under its ID, prefixed with its emission
// order; an ID already present is left alone.
func addOutbox(b *bolt.Bucket, as []encodedAction) error {
	for _, a := range as {
		if b.Get([]byte(a.id)) != nil {
			continue
		}
		order, err := b.NextSequence()
		if err != nil {
			return err
		}
		v := make([]byte, 8+len(a.json))
		binary.BigEndian.PutUint64(v, order)
		copy(v[8:], a.json)
		if err := b.Put([]byte(a.id), v); err != nil {
			return err
		}
	}
	return nil
}

func removeOutbox(b *bolt.Bucket, ids []string) error {
	for _, id := range ids {
		if id == "" {
			continue
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
	}
	return nil
}

func decodeOutbox(v []byte) (uint64, pipeline.Action, error) {
	var a pipeline.Action
	if len(v) < 8 {
		return 0, a, errors.New("shorter than its 8-byte order")
	}
	err := json.Unmarshal(v[8:], &a)
	return binary.BigEndian.Uint64(v[:8]), a, err
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}
