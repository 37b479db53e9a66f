package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

func TestRoundTripAcrossReopen(t *testing.T) {
	path := tempPath(t)
	s := openT(t, path, Options{})
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, st) != mustJSON(t, pipeline.NewState()) {
		t.Fatalf("fresh store loads %s, want an empty state", mustJSON(t, st))
	}

	evs := []pipeline.Event{
		comment(1),
		{Time: t0, Build: &pipeline.BuildResult{BuildSet: "bs-1", Phase: pipeline.PhaseFailed, StartedAt: t0, FinishedAt: t0.Add(time.Minute),
			Nodes: []pipeline.NodeResult{{Name: "test", Phase: pipeline.PhaseFailed, Message: "exit 1"}}}},
		{Time: t0, Tick: &pipeline.Tick{}},
	}
	seqs, err := s.AppendInbox(evs...)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs) != "[1 2 3]" {
		t.Fatalf("sequence numbers %v, want [1 2 3]", seqs)
	}
	head, err := s.Inbox(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(head) != 2 || head[0].Seq != 1 || head[1].Seq != 2 || mustJSON(t, head[1].Event) != mustJSON(t, evs[1]) {
		t.Fatalf("Inbox(2) = %s", mustJSON(t, head))
	}

	state := testState(40, 7)
	hist := HistoryEntry{Pipeline: "gate", Project: "p", Branch: "master", Change: 1, Patchset: 1, Item: "it-1",
		BuildSet: "bs-1", Outcome: "failure", EnqueuedAt: t0, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(time.Minute)}
	if err := s.Commit(Turn{State: state, Consumed: []uint64{1, 2}, Emitted: []pipeline.Action{act("b"), act("a")},
		Finished: []HistoryEntry{hist}}); err != nil {
		t.Fatal(err)
	}
	closeT(t, s)

	s = openT(t, path, Options{})
	defer closeT(t, s)
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, state) {
		t.Fatal("state changed across a reopen")
	}
	got.Seq = 999 // the caller owns what Load returns
	if again, err := s.Load(); err != nil || again.Seq != 7 || again == got {
		t.Fatalf("second Load: %v, %v", again, err)
	}
	inbox, err := s.Inbox(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(inbox) != 1 || inbox[0].Seq != 3 || mustJSON(t, inbox[0].Event) != mustJSON(t, evs[2]) {
		t.Fatalf("inbox after consuming 1 and 2: %s", mustJSON(t, inbox))
	}
	out, err := s.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, out) != mustJSON(t, []pipeline.Action{act("b"), act("a")}) {
		t.Fatalf("outbox %s", mustJSON(t, out))
	}
	h, err := s.History("gate", "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, h) != mustJSON(t, []HistoryEntry{hist}) {
		t.Fatalf("history %s", mustJSON(t, h))
	}
	// New sequence numbers continue after the consumed ones.
	if seqs, err := s.AppendInbox(comment(4)); err != nil || seqs[0] != 4 {
		t.Fatalf("next sequence number %v (%v), want 4", seqs, err)
	}
	info, err := s.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Schema != 1 || info.Inbox != 2 || info.Outbox != 2 || info.StateBytes == 0 || info.CreatedAt.IsZero() {
		t.Fatalf("info %+v", info)
	}
}

func TestOutboxIsIdempotentAndOrdered(t *testing.T) {
	s := openT(t, tempPath(t), Options{NoSync: true})
	defer closeT(t, s)
	ids := func() string {
		t.Helper()
		out, err := s.Outbox()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(actionIDs(out), ",")
	}
	if err := s.Commit(Turn{Emitted: []pipeline.Action{act("c"), act("a"), act("b")}}); err != nil {
		t.Fatal(err)
	}
	changed := act("a")
	changed.Reason = "re-emitted"
	if err := s.Commit(Turn{Emitted: []pipeline.Action{changed, act("d"), act("c")}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(); got != "c,a,b,d" {
		t.Fatalf("outbox %s, want c,a,b,d (re-adding keeps the first emission and its place)", got)
	}
	out, _ := s.Outbox()
	if out[1].Reason != "" {
		t.Fatalf("re-adding a replaced the stored action: %+v", out[1])
	}
	if err := s.Confirm("a", "unknown", "a"); err != nil {
		t.Fatal(err)
	}
	if got := ids(); got != "c,b,d" {
		t.Fatalf("outbox after confirming a: %s", got)
	}
	// Emitted and confirmed in the same turn: gone. Confirmed earlier and
	// emitted again: back, at the end.
	if err := s.Commit(Turn{Emitted: []pipeline.Action{act("e"), act("a")}, Confirmed: []string{"e", "c"}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(); got != "b,d,a" {
		t.Fatalf("outbox %s, want b,d,a", got)
	}
	if err := s.Commit(Turn{Emitted: []pipeline.Action{{Kind: pipeline.ActCancel}}}); err == nil {
		t.Fatal("an action without ID was accepted")
	}
}

// snapshot is everything a store holds, for comparing before and after.
func snapshot(t *testing.T, s *Store) string {
	t.Helper()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Inbox(0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.History("gate", "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, []any{st, in, out, h})
}

func TestCommitIsAtomic(t *testing.T) {
	s := openT(t, tempPath(t), Options{NoSync: true})
	defer closeT(t, s)
	if _, err := s.AppendInbox(comment(1), comment(2), comment(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(Turn{State: testState(10, 1), Consumed: []uint64{1}, Emitted: []pipeline.Action{act("a1")},
		Finished: []HistoryEntry{{Pipeline: "gate", Project: "p", Item: "it-1"}}}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)
	next := func() Turn {
		return Turn{State: testState(10, 2), Consumed: []uint64{2}, Emitted: []pipeline.Action{act("a2")},
			Confirmed: []string{"a1"}, Finished: []HistoryEntry{{Pipeline: "gate", Project: "p", Item: "it-2"}}}
	}

	for _, stage := range []string{"state", "inbox", "outbox", "history"} {
		injected := errors.New("injected failure after " + stage)
		s.hook = func(got string) error {
			if got == stage {
				return injected
			}
			return nil
		}
		if err := s.Commit(next()); !errors.Is(err, injected) {
			t.Fatalf("failure after %s: Commit returned %v", stage, err)
		}
		if after := snapshot(t, s); after != before {
			t.Fatalf("a Commit that failed after %s changed the store", stage)
		}
	}
	s.hook = nil

	bad := next()
	bad.State.Now = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // JSON cannot hold it
	if err := s.Commit(bad); err == nil || !strings.Contains(err.Error(), "does not serialise") {
		t.Fatalf("a state that does not marshal: Commit returned %v", err)
	}
	twice := next()
	twice.Consumed = []uint64{2, 1} // 1 was consumed by the first turn
	if err := s.Commit(twice); err == nil || !strings.Contains(err.Error(), "inbox entry 1 is not in the inbox") {
		t.Fatalf("consuming an entry twice: Commit returned %v", err)
	}
	noProject := next()
	noProject.Finished[0].Project = ""
	if err := s.Commit(noProject); err == nil {
		t.Fatal("a history entry without project was accepted")
	}
	if after := snapshot(t, s); after != before {
		t.Fatal("a rejected Commit changed the store")
	}

	if err := s.Commit(next()); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, s); after == before {
		t.Fatal("the good Commit changed nothing")
	}
}

func TestHistoryRetention(t *testing.T) {
	s := openT(t, tempPath(t), Options{NoSync: true, HistoryPerProject: 3})
	defer closeT(t, s)
	entry := func(pl, project string, n int) HistoryEntry {
		return HistoryEntry{Pipeline: pl, Project: project, Item: fmt.Sprintf("%s-%s-%d", pl, project, n), Outcome: "success"}
	}
	if err := s.Commit(Turn{Finished: []HistoryEntry{entry("gate", "p1", 1), entry("gate", "p2", 1), entry("gate", "p1", 2)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(Turn{Finished: []HistoryEntry{entry("gate", "p1", 3), entry("check", "p1", 1), entry("gate", "p1", 4), entry("gate", "p1", 5)}}); err != nil {
		t.Fatal(err)
	}
	items := func(pl, project string, limit int) string {
		t.Helper()
		h, err := s.History(pl, project, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range h {
			out = append(out, e.Item)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		pl, project string
		limit       int
		want        string
	}{
		{"gate", "p1", 0, "gate-p1-5,gate-p1-4,gate-p1-3"},
		{"gate", "p1", 2, "gate-p1-5,gate-p1-4"},
		{"gate", "p2", 0, "gate-p2-1"},
		{"check", "p1", 0, "check-p1-1"},
		{"check", "p2", 0, ""},
		{"post", "p1", 0, ""},
	} {
		if got := items(c.pl, c.project, c.limit); got != c.want {
			t.Errorf("History(%s, %s, %d) = %s, want %s", c.pl, c.project, c.limit, got, c.want)
		}
	}
}

// TestConcurrentIntakeAndTurns has an intake goroutine append events while
// the scheduler consumes them turn by turn (run it with -race).
func TestConcurrentIntakeAndTurns(t *testing.T) {
	s := openT(t, tempPath(t), Options{NoSync: true})
	defer closeT(t, s)
	const producers, perProducer = 4, 50
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Go(func() {
			for i := 0; i < perProducer; i++ {
				if _, err := s.AppendInbox(comment(p*perProducer + i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[int]bool{}
	var turn int64
	for len(seen) < producers*perProducer && !t.Failed() {
		batch, err := s.Inbox(16)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			time.Sleep(time.Millisecond)
			continue
		}
		var consumed []uint64
		for _, e := range batch {
			n, err := eventIndex(e.Event)
			if err != nil || seen[n] {
				t.Fatalf("event %d delivered twice (%v)", n, err)
			}
			seen[n] = true
			consumed = append(consumed, e.Seq)
		}
		turn++
		if err := s.Commit(Turn{State: testState(2, turn), Consumed: consumed}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if rest, _ := s.Inbox(0); len(rest) != 0 {
		t.Fatalf("%d events left in the inbox", len(rest))
	}
}
