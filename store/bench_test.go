package store

import (
	"fmt"
	"testing"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// BenchmarkCommitTurn measures one scheduler turn made durable: the state of
// n items marshalled and written whole, one inbox event consumed, two
// actions emitted and two confirmed, one history entry, fsync'd (twice, by
// bbolt) unless nosync. It reports the state's size and the file's size at
// the end (the file must not keep growing: freed pages are reused).
func BenchmarkCommitTurn(b *testing.B) {
	for _, c := range []struct {
		items  int
		noSync bool
	}{{0, false}, {100, false}, {1000, false}, {1000, true}} {
		name := fmt.Sprintf("items=%d", c.items)
		if c.noSync {
			name += "/nosync"
		}
		b.Run(name, func(b *testing.B) {
			path := tempPath(b)
			s := openT(b, path, Options{NoSync: c.noSync})
			defer closeT(b, s)
			st := testState(c.items, 0)
			data, err := st.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			var seqs []uint64
			for len(seqs) < b.N {
				var evs []pipeline.Event
				for j := 0; j < 1000 && len(seqs)+len(evs) < b.N; j++ {
					evs = append(evs, comment(len(seqs)+j))
				}
				got, err := s.AppendInbox(evs...)
				if err != nil {
					b.Fatal(err)
				}
				seqs = append(seqs, got...)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st.Seq = int64(i + 1)
				t := Turn{
					State:     st,
					Consumed:  seqs[i : i+1],
					Emitted:   []pipeline.Action{act(fmt.Sprint(2 * i)), act(fmt.Sprint(2*i + 1))},
					Confirmed: []string{fmt.Sprint(2*i - 2), fmt.Sprint(2*i - 1)},
					Finished:  []HistoryEntry{{Pipeline: "gate", Project: fmt.Sprintf("p%d", i%50), Item: fmt.Sprint(i), Outcome: "success"}},
				}
				if err := s.Commit(t); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(len(data)), "state-bytes")
			b.ReportMetric(float64(size(b, path)), "file-bytes")
		})
	}
}

// BenchmarkLoad1000Items measures reading back a state of 1,000 items: Load
// on an open store, and Open (with its full read-only check) + Load + Close,
// the store's share of restart-to-ready.
func BenchmarkLoad1000Items(b *testing.B) {
	path := tempPath(b)
	s := openT(b, path, Options{})
	if _, err := s.AppendInbox(comment(1), comment(2)); err != nil {
		b.Fatal(err)
	}
	if err := s.Commit(Turn{State: testState(1000, 1), Emitted: []pipeline.Action{act("a"), act("b")}}); err != nil {
		b.Fatal(err)
	}
	b.Run("Load", func(b *testing.B) {
		for b.Loop() {
			st, err := s.Load()
			if err != nil || st.Seq != 1 {
				b.Fatal(st, err)
			}
		}
	})
	closeT(b, s)
	b.Run("Open+Load+Outbox+Close", func(b *testing.B) {
		for b.Loop() {
			s := openT(b, path, Options{})
			if st, err := s.Load(); err != nil || st.Seq != 1 {
				b.Fatal(st, err)
			}
			if out, err := s.Outbox(); err != nil || len(out) != 2 {
				b.Fatal(out, err)
			}
			closeT(b, s)
		}
	})
	b.ReportMetric(float64(size(b, path)), "file-bytes")
}
