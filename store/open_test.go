package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// makeStore writes a store holding a state of n items, inbox, outbox and
// history entries, and closes it.
func makeStore(t *testing.T, n int) string {
	t.Helper()
	path := tempPath(t)
	s := openT(t, path, Options{NoSync: true})
	if _, err := s.AppendInbox(comment(1), comment(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(Turn{State: testState(n, 1), Consumed: []uint64{1}, Emitted: []pipeline.Action{act("a")},
		Finished: []HistoryEntry{{Pipeline: "gate", Project: "p", Item: "it-0"}}}); err != nil {
		t.Fatal(err)
	}
	closeT(t, s)
	return path
}

// poke changes the file with bbolt itself, as another program would.
func poke(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func overwrite(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// openFails opens a file that must not open, checks that the error is of
// the given kind and names the file, and that the file is byte for byte
// what it was.
func openFails(t *testing.T, path string, kind error) error {
	t.Helper()
	before := fileSum(t, path)
	s, err := Open(path, Options{})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded")
	}
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not modified") {
		t.Errorf("message does not name the file or say it was left alone: %v", err)
	}
	if fileSum(t, path) != before {
		t.Fatal("a failed Open modified the file")
	}
	// Nothing was left holding the file: a second attempt fails the same way.
	if _, err2 := Open(path, Options{}); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second Open: %v, want %v", err2, err)
	}
	t.Log(err)
	return err
}

func TestOpenRefusesOtherSchemaVersions(t *testing.T) {
	for _, c := range []struct {
		name   string
		bucket []byte
		key    []byte
		value  string
		what   string
		found  int
		hint   string
	}{
		{"newer store", bucketMeta, keySchema, "2", "store", 2, "newer Seakeeper"},
		{"older store", bucketMeta, keySchema, "0", "store", 0, "no migration"},
		{"newer pipeline state", bucketState, keyStateVersion, "99", "pipeline state", 99, "newer Seakeeper"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := makeStore(t, 5)
			poke(t, path, func(tx *bolt.Tx) error { return tx.Bucket(c.bucket).Put(c.key, []byte(c.value)) })
			err := openFails(t, path, ErrSchema)
			var se *SchemaError
			if !errors.As(err, &se) || se.What != c.what || se.Found != c.found || se.Supported != 1 || se.Path != path {
				t.Fatalf("err = %#v", err)
			}
			if !strings.Contains(err.Error(), c.hint) {
				t.Errorf("message lacks %q: %v", c.hint, err)
			}
		})
	}
}

func TestOpenRefusesCorruptFiles(t *testing.T) {
	page := int64(os.Getpagesize())
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"random bytes", func(t *testing.T, path string) { writeFile(t, path, garbage(64<<10)) }, "bad bbolt header"},
		{"a few bytes", func(t *testing.T, path string) { writeFile(t, path, []byte("hello\n")) }, "bad bbolt header"},
		{"meta pages zeroed", func(t *testing.T, path string) { overwrite(t, path, 0, make([]byte, 2*page)) }, "bad bbolt header"},
		{"truncated", func(t *testing.T, path string) { truncate(t, path, 0.5) }, "truncated"},
		{"truncated to three pages", func(t *testing.T, path string) {
			if err := os.Truncate(path, 3*page); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"data pages zeroed", func(t *testing.T, path string) { overwrite(t, path, 2*page, make([]byte, size(t, path)-2*page)) }, ""},
		{"data pages random", func(t *testing.T, path string) { overwrite(t, path, 2*page, garbage(int(size(t, path)-2*page))) }, ""},
		{"state value damaged", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(data, []byte(`"subject":"Fix the thing number 17"`))
			if i < 0 {
				t.Fatal("state value not found in the file")
			}
			overwrite(t, path, int64(i), []byte{0, 0, 0, 0})
		}, "pipeline state does not decode"},
		{"foreign bbolt file", func(t *testing.T, path string) {
			_ = os.Remove(path)
			poke(t, path, func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err })
		}, "another program"},
		{"schema not a number", func(t *testing.T, path string) {
			poke(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("one")) })
		}, "not a number"},
		{"bucket missing", func(t *testing.T, path string) {
			poke(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketOutbox) })
		}, `bucket "outbox" is missing`},
		{"inbox entry not JSON", func(t *testing.T, path string) {
			poke(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketInbox).Put(seqKey(9), []byte("{")) })
		}, "inbox entry 9 does not decode"},
		{"outbox entry under another ID", func(t *testing.T, path string) {
			poke(t, path, func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketOutbox)
				return b.Put([]byte("x"), b.Get([]byte("a")))
			})
		}, `outbox entry "x" holds action "a"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := makeStore(t, 300)
			c.damage(t, path)
			err := openFails(t, path, ErrCorrupt)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("message lacks %q: %v", c.want, err)
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func size(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func truncate(t *testing.T, path string, frac float64) {
	t.Helper()
	if err := os.Truncate(path, int64(float64(size(t, path))*frac)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenInitialisesNewAndEmptyFiles(t *testing.T) {
	for _, c := range []struct {
		name    string
		prepare func(t *testing.T, path string)
	}{
		{"absent", func(*testing.T, string) {}},
		{"zero bytes", func(t *testing.T, path string) { writeFile(t, path, nil) }},
		{"bbolt file without buckets", func(t *testing.T, path string) {
			poke(t, path, func(*bolt.Tx) error { return nil })
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := tempPath(t)
			c.prepare(t, path)
			s := openT(t, path, Options{})
			if err := s.Commit(Turn{State: testState(3, 1)}); err != nil {
				t.Fatal(err)
			}
			closeT(t, s)
			s = openT(t, path, Options{})
			defer closeT(t, s)
			if st, err := s.Load(); err != nil || st.Seq != 1 {
				t.Fatalf("Load: %v %v", st, err)
			}
		})
	}
}

func TestOpenAndCloseLeaveTheFileAlone(t *testing.T) {
	path := makeStore(t, 100)
	before := fileSum(t, path)
	s := openT(t, path, Options{})
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Outbox(); err != nil {
		t.Fatal(err)
	}
	closeT(t, s)
	if fileSum(t, path) != before {
		t.Fatal("opening, reading and closing the store changed the file")
	}
}

func TestOpenRefusesADirectory(t *testing.T) {
	if _, err := Open(t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Open(dir) = %v", err)
	}
}

// TestGuardTurnsAFaultIntoErrCorrupt reads a mapping past the end of its
// file (SIGBUS), as bbolt does on a file truncated behind its back.
func TestGuardTurnsAFaultIntoErrCorrupt(t *testing.T) {
	path := tempPath(t)
	page := os.Getpagesize()
	writeFile(t, path, make([]byte, 2*page))
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, 2*page, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Munmap(m) }()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	var sink byte
	err = guard(path, func() error { sink = m[page+1]; return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("guard = %v (read %d), want ErrCorrupt", err, sink)
	}
	t.Log(err)
}
