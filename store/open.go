package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// SchemaVersion is the layout version this build reads and writes.
const SchemaVersion = 1

// Defaults for Options.
const (
	DefaultTimeout           = 5 * time.Second
	DefaultHistoryPerProject = 50
)

// Bucket and key names.
var (
	bucketMeta    = []byte("meta")
	bucketState   = []byte("state")
	bucketInbox   = []byte("inbox")
	bucketOutbox  = []byte("outbox")
	bucketHistory = []byte("history")

	keySchema       = []byte("schema")
	keyCreated      = []byte("created")
	keyState        = []byte("state")
	keyStateVersion = []byte("version")
)

// Options tune Open. The zero value is what the daemon uses.
type Options struct {
	// Timeout bounds the wait for the file lock held by another process;
	// zero or negative means DefaultTimeout. There is no "wait forever".
	Timeout time.Duration
	// NoSync skips fsync on commit. Tests only: see the package doc.
	NoSync bool
	// HistoryPerProject is how many finished items are kept per pipeline
	// and project; older ones are pruned by Commit. Zero or negative means
	// DefaultHistoryPerProject.
	HistoryPerProject int
	// Logger receives a line on open and on creation; nil discards.
	Logger *slog.Logger
}

// Store is an open store file. Its methods are safe for concurrent use;
// writes are serialised by bbolt.
type Store struct {
	db      *bolt.DB
	path    string
	opts    Options
	log     *slog.Logger
	created time.Time

	// preloaded is the state check decoded, handed out by the first Load
	// if no transaction happened since (preloadTx).
	mu        sync.Mutex
	preloaded *pipeline.State
	preloadTx int

	// hook, when set by tests, is called inside Commit's transaction after
	// each stage ("state", "inbox", "outbox", "history"); an error aborts
	// the transaction.
	hook func(stage string) error
}

// Open opens the store at path, creating it (schema version 1) if it does
// not exist or is empty. An existing file is checked read-only first; a file
// that fails the check is reported (ErrCorrupt, ErrSchema) and left
// unmodified. A file held by another process gives ErrInUse after
// opts.Timeout.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.HistoryPerProject <= 0 {
		opts.HistoryPerProject = DefaultHistoryPerProject
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	deadline := start.Add(opts.Timeout)
	// remaining is what is left of the lock wait, over every open below.
	remaining := func() time.Duration {
		if d := time.Until(deadline); d >= time.Millisecond {
			return d
		}
		return time.Millisecond // bbolt waits forever on 0
	}

	// Two attempts: a file that was absent when we looked may have been
	// created by another process by the time we hold the lock; then it is
	// checked like any existing file.
	for attempt := 0; ; attempt++ {
		var sum *summary
		fi, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("store %s: %w", path, err)
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("store %s: not a regular file", path)
		case fi.Size() > 0:
			if sum, err = check(path, remaining(), opts.Timeout); err != nil {
				return nil, err
			}
		}
		db, err := openBolt(path, &bolt.Options{
			Timeout:        remaining(),
			NoSync:         opts.NoSync,
			NoFreelistSync: true,
		})
		if err != nil {
			return nil, classify(path, opts.Timeout, err)
		}
		s := &Store{db: db, path: path, opts: opts, log: log}
		if sum != nil && !sum.empty {
			s.created = sum.created
			s.preloaded, s.preloadTx = sum.state, sum.txid
			log.Info("store opened", "path", path, "schema", SchemaVersion, "created", sum.created,
				"bytes", sum.size, "stateBytes", sum.stateBytes, "inbox", sum.inbox, "outbox", sum.outbox,
				"history", sum.history, "took", time.Since(start).Round(time.Millisecond))
			return s, nil
		}
		err = s.initialise()
		if err == errNotEmpty && attempt == 0 {
			_ = db.Close()
			continue
		}
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("store %s: initialising: %w", path, err)
		}
		log.Info("store created", "path", path, "schema", SchemaVersion)
		return s, nil
	}
}

var errNotEmpty = errors.New("the file is no longer empty")

// initialise writes the buckets and meta data of a new store. It refuses
// (errNotEmpty, nothing written) when the file already holds buckets: that
// file must go through check first.
func (s *Store) initialise() error {
	now := time.Now().UTC()
	return s.db.Update(func(tx *bolt.Tx) error {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return errNotEmpty
		}
		for _, name := range [][]byte{bucketMeta, bucketState, bucketInbox, bucketOutbox, bucketHistory} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return err
		}
		s.created = now
		return meta.Put(keyCreated, []byte(now.Format(time.RFC3339Nano)))
	})
}

// openBolt opens the file with bbolt, turning a panic or memory fault while
// reading a damaged file into ErrCorrupt and closing the file behind it.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	var f *os.File
	o.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		var err error
		f, err = os.OpenFile(name, flag, perm)
		return f, err
	}
	err = guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, o)
		return err
	})
	if err != nil && db == nil && f != nil && errors.Is(err, ErrCorrupt) {
		_ = f.Close() // bbolt did not get to close it
	}
	return db, err
}

// classify turns bbolt's open errors into the store's.
func classify(path string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, berrors.ErrTimeout):
		return inUse(path, timeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return corruptf(path, err, "bad bbolt header")
	}
	return fmt.Errorf("store %s: %w", path, err)
}

// Close closes the file and releases its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store %s: close: %w", s.path, err)
	}
	return nil
}

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Info is a summary of the store, for logs and metrics.
type Info struct {
	Path       string
	Schema     int
	CreatedAt  time.Time
	Bytes      int64 // size of the data in the file
	StateBytes int
	Inbox      int
	Outbox     int
}

// Info returns a summary of the store.
func (s *Store) Info() (Info, error) {
	in := Info{Path: s.path, Schema: SchemaVersion, CreatedAt: s.created}
	err := s.db.View(func(tx *bolt.Tx) error {
		in.Bytes = tx.Size()
		in.StateBytes = len(tx.Bucket(bucketState).Get(keyState))
		in.Inbox = tx.Bucket(bucketInbox).Stats().KeyN
		in.Outbox = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return in, err
}
