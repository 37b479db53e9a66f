package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// summary is what check found in an existing file.
type summary struct {
	empty      bool // a valid bbolt file without buckets: initialise it
	created    time.Time
	size       int64
	stateBytes int
	// state is the decoded state and txid the transaction that wrote it:
	// the first Load reuses it if the file is still at that transaction.
	state   *pipeline.State
	txid    int
	inbox   int
	outbox  int
	history int
}

// guard runs fn, turning a panic, or a memory fault on the mapped file (a
// truncated file faults with SIGBUS), into ErrCorrupt. Faults only become
// panics in the goroutine that set SetPanicOnFault, so everything that reads
// a file not yet checked runs inside guard, in the caller's goroutine.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(interface{ Addr() uintptr }); ok {
				err = corruptf(path, nil, "memory fault at %#x reading the mapped file (truncated or damaged?): %v", f.Addr(), r)
				return
			}
			err = corruptf(path, nil, "reading it failed: %v", r)
		}
	}()
	return fn()
}

// check opens an existing file read-only (shared lock, so nothing can be
// written) and verifies it: bbolt's structure, the schema version, and that
// every value decodes. The file is closed again before it returns. It waits
// up to wait for the lock; timeout is the whole wait, for the message.
func check(path string, wait, timeout time.Duration) (*summary, error) {
	db, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: wait})
	if err != nil {
		return nil, classify(path, timeout, err)
	}
	var sum summary
	err = guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error { return checkTx(path, tx, &sum) })
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("store %s: closing after check: %w", path, cerr)
	}
	if err != nil {
		return nil, err
	}
	return &sum, nil
}

func checkTx(path string, tx *bolt.Tx, sum *summary) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	sum.size = tx.Size()
	sum.txid = tx.ID()
	if fi.Size() < tx.Size() {
		return corruptf(path, nil, "the file is %d bytes but its header says %d (truncated?)", fi.Size(), tx.Size())
	}

	// Touch every page reachable from the root here, in the guarded
	// goroutine, before tx.Check walks them in a goroutine of its own where
	// a fault could not be recovered.
	var roots [][]byte
	err = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		roots = append(roots, append([]byte(nil), name...))
		touch(b)
		return nil
	})
	if err != nil {
		return corruptf(path, err, "walking the file")
	}
	var problems []string
	for e := range tx.Check() {
		if len(problems) < 5 {
			problems = append(problems, e.Error())
		}
	}
	if len(problems) > 0 {
		return corruptf(path, nil, "bbolt consistency check: %s", strings.Join(problems, "; "))
	}
	if len(roots) == 0 {
		sum.empty = true
		return nil
	}

	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return corruptf(path, nil, "a bbolt file without a %q bucket (another program's database?)", bucketMeta)
	}
	v, err := strconv.Atoi(string(meta.Get(keySchema)))
	if err != nil {
		return corruptf(path, nil, "schema version %q is not a number", meta.Get(keySchema))
	}
	if v != SchemaVersion {
		return &SchemaError{Path: path, What: "store", Found: v, Supported: SchemaVersion}
	}
	if sum.created, err = time.Parse(time.RFC3339Nano, string(meta.Get(keyCreated))); err != nil {
		return corruptf(path, err, "creation time")
	}
	for _, name := range [][]byte{bucketState, bucketInbox, bucketOutbox, bucketHistory} {
		if tx.Bucket(name) == nil {
			return corruptf(path, nil, "bucket %q is missing", name)
		}
	}
	if err = checkState(path, tx.Bucket(bucketState), sum); err != nil {
		return err
	}
	if sum.inbox, err = checkInbox(path, tx.Bucket(bucketInbox)); err != nil {
		return err
	}
	if sum.outbox, err = checkOutbox(path, tx.Bucket(bucketOutbox)); err != nil {
		return err
	}
	sum.history, err = checkHistory(path, tx.Bucket(bucketHistory))
	return err
}

// touch reads every key and every page of every value under b.
func touch(b *bolt.Bucket) {
	var sink byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if child := b.Bucket(k); child != nil {
				touch(child)
			}
			continue
		}
		for i := 0; i < len(v); i += 4096 {
			sink ^= v[i]
		}
		if len(v) > 0 {
			sink ^= v[len(v)-1]
		}
	}
	_ = sink
}

func checkState(path string, b *bolt.Bucket, sum *summary) error {
	data := b.Get(keyState)
	if data == nil {
		return nil
	}
	st, err := decodeState(path, b.Get(keyStateVersion), data)
	if err != nil {
		return err
	}
	sum.state, sum.stateBytes = st, len(data)
	return nil
}

// decodeState decodes the stored state, after checking the version the
// store recorded next to it.
func decodeState(path string, version, data []byte) (*pipeline.State, error) {
	v, err := strconv.Atoi(string(version))
	if err != nil {
		return nil, corruptf(path, nil, "pipeline state version %q is not a number", version)
	}
	if v != pipeline.StateVersion {
		return nil, &SchemaError{Path: path, What: "pipeline state", Found: v, Supported: pipeline.StateVersion}
	}
	st, err := pipeline.UnmarshalState(data)
	if err != nil {
		return nil, corruptf(path, err, "the pipeline state does not decode")
	}
	return st, nil
}

func checkInbox(path string, b *bolt.Bucket) (int, error) {
	n := 0
	err := b.ForEach(func(k, v []byte) error {
		n++
		if len(k) != 8 || v == nil {
			return corruptf(path, nil, "inbox key %x is not an 8-byte sequence number", k)
		}
		var ev pipeline.Event
		if err := json.Unmarshal(v, &ev); err != nil {
			return corruptf(path, err, "inbox entry %d does not decode", binary.BigEndian.Uint64(k))
		}
		return nil
	})
	return n, err
}

func checkOutbox(path string, b *bolt.Bucket) (int, error) {
	n := 0
	err := b.ForEach(func(k, v []byte) error {
		n++
		_, a, err := decodeOutbox(v)
		if err != nil {
			return corruptf(path, err, "outbox entry %q does not decode", k)
		}
		if a.ID != string(k) {
			return corruptf(path, nil, "outbox entry %q holds action %q", k, a.ID)
		}
		return nil
	})
	return n, err
}

func checkHistory(path string, b *bolt.Bucket) (int, error) {
	n := 0
	err := b.ForEachBucket(func(pl []byte) error {
		pb := b.Bucket(pl)
		return pb.ForEachBucket(func(proj []byte) error {
			return pb.Bucket(proj).ForEach(func(k, v []byte) error {
				n++
				var h HistoryEntry
				if len(k) != 8 || v == nil {
					return corruptf(path, nil, "history key %x of %s/%s is not an 8-byte sequence number", k, pl, proj)
				}
				if err := json.Unmarshal(v, &h); err != nil {
					return corruptf(path, err, "history entry %d of %s/%s does not decode", binary.BigEndian.Uint64(k), pl, proj)
				}
				return nil
			})
		})
	})
	return n, err
}
