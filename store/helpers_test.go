package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// helperEnv selects a helper-process role when the test binary re-executes
// itself; see TestMain.
const (
	helperEnv     = "SEAKEEPER_STORE_HELPER"
	helperPathEnv = "SEAKEEPER_STORE_HELPER_PATH"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "hold":
		helperHold(os.Getenv(helperPathEnv))
	case "crash":
		helperCrash(os.Getenv(helperPathEnv))
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperHold opens the store, says "ready" and holds it until stdin closes.
func helperHold(path string) {
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// testState builds a state of n items the shape the gate and check
// pipelines give it: half of them in shared gate queues of up to 50 items
// whose buildsets carry the whole speculative change list ahead of them, the
// rest in check queues of one item; every item has a running build.
func testState(n int, seq int64) *pipeline.State {
	st := pipeline.NewState()
	st.Seq = seq
	st.Now = t0.Add(time.Duration(seq) * time.Second)
	gate := &pipeline.PipelineState{Name: "gate"}
	check := &pipeline.PipelineState{Name: "check"}
	st.Pipelines = []*pipeline.PipelineState{check, gate}
	var q *pipeline.Queue
	var ahead []pipeline.Spec
	for i := 0; i < n; i++ {
		number := 100000 + i
		project := fmt.Sprintf("mediawiki/extensions/Extension%03d", i%97)
		ch := pipeline.Change{
			Project: project, Branch: "master", Number: number, Patchset: 3,
			Ref:      fmt.Sprintf("refs/changes/%02d/%d/3", number%100, number),
			Commit:   fmt.Sprintf("%040x", number),
			ChangeID: fmt.Sprintf("I%040x", number), Subject: fmt.Sprintf("Fix the thing number %d", i),
			Owner: "dev", URL: fmt.Sprintf("https://review.example.org/c/%s/+/%d", project, number),
			Status:    pipeline.StatusNew,
			Approvals: []pipeline.Approval{{Label: "Code-Review", Value: 2, By: "reviewer"}, {Label: "Verified", Value: 1, By: "seakeeper"}},
		}
		it := &pipeline.Item{
			ID: fmt.Sprintf("it-%d", i), N: int64(i + 1), Change: ch, Live: true, Active: true,
			EnqueuedAt: t0.Add(time.Duration(i) * time.Second),
		}
		spec := pipeline.Spec{Project: ch.Project, Branch: ch.Branch, Number: ch.Number, Patchset: ch.Patchset, Ref: ch.Ref, Commit: ch.Commit}
		if i < n/2 {
			if i%50 == 0 {
				q = &pipeline.Queue{Name: fmt.Sprintf("shared-%d/master", i/50), Window: 64}
				gate.Queues = append(gate.Queues, q)
				ahead = nil
			}
			if len(q.Items) > 0 {
				it.Ahead = q.Items[len(q.Items)-1].ID
			}
			ahead = append(ahead, spec)
		} else {
			q = &pipeline.Queue{Name: ch.Key().String()}
			check.Queues = append(check.Queues, q)
			ahead = []pipeline.Spec{spec}
		}
		it.Queue = q.Name
		it.BuildSet = &pipeline.BuildSet{
			ID: fmt.Sprintf("bs-%d-1", i), Changes: append([]pipeline.Spec(nil), ahead...),
			Merge:   pipeline.MergeReady,
			Commits: []pipeline.ProjectCommit{{Project: project, Branch: "master", Commit: fmt.Sprintf("%040x", number*7)}},
			Build: &pipeline.Build{
				Phase: pipeline.PhaseRunning, URL: fmt.Sprintf("https://argo.example.org/workflows/ci/sk-%d", i),
				Nodes:     []pipeline.NodeResult{{Name: "lint", Phase: pipeline.PhaseSucceeded}, {Name: "test", Phase: pipeline.PhaseRunning}},
				StartedAt: it.EnqueuedAt.Add(time.Minute),
			},
			CreatedAt: it.EnqueuedAt,
		}
		q.Items = append(q.Items, it)
	}
	return st
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func fileSum(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func tempPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "seakeeper.db")
}

func openT(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closeT(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func act(id string) pipeline.Action {
	return pipeline.Action{ID: id, Kind: pipeline.ActBuild, Pipeline: "gate", Item: "it-" + id, BuildSet: "bs-" + id,
		Change: pipeline.Spec{Project: "p", Branch: "master", Number: 1, Patchset: 1, Ref: "refs/changes/01/1/1"}}
}

func comment(n int) pipeline.Event {
	return pipeline.Event{Time: t0.Add(time.Duration(n) * time.Second), Trigger: &pipeline.TriggerEvent{
		Type: "comment-added", Project: "p", Branch: "master", Comment: fmt.Sprintf("ev %d", n),
		Change: &pipeline.Change{Project: "p", Branch: "master", Number: n, Patchset: 1, Ref: fmt.Sprintf("refs/changes/%02d/%d/1", n%100, n)},
	}}
}

// eventIndex returns n of comment(n).
func eventIndex(ev pipeline.Event) (int, error) {
	var n int
	if ev.Trigger == nil {
		return 0, fmt.Errorf("event without trigger: %+v", ev)
	}
	if _, err := fmt.Sscanf(ev.Trigger.Comment, "ev %d", &n); err != nil {
		return 0, fmt.Errorf("event comment %q: %v", ev.Trigger.Comment, err)
	}
	return n, nil
}

func actionIDs(as []pipeline.Action) []string {
	out := make([]string, len(as))
	for i := range as {
		out[i] = as[i].ID
	}
	return out
}
