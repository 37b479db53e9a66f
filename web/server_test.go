package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, body)
	}
	return v
}

func findQueue(t *testing.T, st Status, pipelineName, queue string) Queue {
	t.Helper()
	for _, p := range st.Pipelines {
		if p.Name != pipelineName {
			continue
		}
		for _, q := range p.Queues {
			if q.Name == queue {
				return q
			}
		}
	}
	t.Fatalf("no queue %s in pipeline %s", queue, pipelineName)
	return Queue{}
}

func numbers(items []Item) []int {
	var out []int
	for _, it := range items {
		out = append(out, it.Change.Number)
	}
	return out
}

func changeNumbers(cs []Change) []int {
	var out []int
	for _, c := range cs {
		out = append(out, c.Number)
	}
	return out
}

func TestStatusJSONDescribesTheGateQueue(t *testing.T) {
	w := gateScenario(t)
	h := newHarness(t, w)
	rec := h.get("/api/status")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/status: %d %q\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	st := decode[Status](t, rec.Body.Bytes())
	now := h.clock.Now()

	if st.Turn != w.turn || !st.UpdatedAt.Equal(w.now) || !st.Now.Equal(now) {
		t.Errorf("turn %d at %v now %v; want turn %d at %v now %v", st.Turn, st.UpdatedAt, st.Now, w.turn, w.now, now)
	}
	var names []string
	for _, p := range st.Pipelines {
		names = append(names, p.Name+"/"+p.Manager)
	}
	if want := []string{"check/independent", "gate/dependent"}; !slices.Equal(names, want) {
		t.Errorf("pipelines %v, want %v", names, want)
	}

	q := findQueue(t, st, "gate", "integrated@master")
	if q.Window != 20 {
		t.Errorf("window %d, want the initial 20", q.Window)
	}
	if got, want := numbers(q.Items), []int{numA, numB, numC, numD, numE}; !slices.Equal(got, want) {
		t.Fatalf("gate items %v, want %v (restricted %d and private %d left out)", got, want, numSecret, numPriv)
	}
	byNum := map[int]Item{}
	for _, it := range q.Items {
		byNum[it.Change.Number] = it
	}
	// Ahead: B behind A; C and D skip the hidden items to the nearest
	// visible one, as the engine tests them: C on A (S is hidden), D on C
	// (the private change is hidden).
	for n, ahead := range map[int]int{numA: 0, numB: numA, numC: numA, numD: numC, numE: numD} {
		want := ""
		if ahead != 0 {
			want = byNum[ahead].ID
		}
		if got := byNum[n].Ahead; got != want {
			t.Errorf("item of %d is behind %q, want %q", n, got, want)
		}
	}
	for n, it := range byNum {
		if it.Failing != (n == numB) {
			t.Errorf("item of %d failing=%v", n, it.Failing)
		}
		if !it.Live || !it.Active || it.Pipeline != "gate" || it.Queue != q.Name {
			t.Errorf("item of %d: live %v active %v pipeline %q queue %q", n, it.Live, it.Active, it.Pipeline, it.Queue)
		}
		want := w.item("gate", n)
		if it.ID != want.ID || it.BuildSet != want.BuildSet.ID || !it.EnqueuedAt.Equal(want.EnqueuedAt) {
			t.Errorf("item of %d: id %s buildset %s enqueued %v; state says %s %s %v", n, it.ID, it.BuildSet, it.EnqueuedAt,
				want.ID, want.BuildSet.ID, want.EnqueuedAt)
		}
		if it.Change.URL != testGerrit+"c/"+it.Change.Project+"/+/"+itoa(n) {
			t.Errorf("item of %d links to %q", n, it.Change.URL)
		}
		if it.EnqueuedSeconds != int64(now.Sub(want.EnqueuedAt)/time.Second) {
			t.Errorf("item of %d: enqueuedSeconds %d, want %v", n, it.EnqueuedSeconds, now.Sub(want.EnqueuedAt))
		}
		end := now // the attempt runs until its build finished
		if n == numB {
			end = want.BuildSet.Build.FinishedAt
		}
		if it.ElapsedSeconds != int64(end.Sub(want.BuildSet.CreatedAt)/time.Second) {
			t.Errorf("item of %d: elapsedSeconds %d, want %v", n, it.ElapsedSeconds, end.Sub(want.BuildSet.CreatedAt))
		}
		b := it.Build
		if b == nil || b.URL != argoURL(it.BuildSet) || b.EstimatedSeconds != int64(DefaultEstimate/time.Second) {
			t.Fatalf("item of %d: build %+v, want its Argo URL and the default estimate", n, b)
		}
		if n == numB {
			if b.Phase != "Failed" || b.FinishedAt == nil || b.RemainingSeconds != 0 || it.RemainingSeconds != 0 {
				t.Errorf("failed build of B: %+v", b)
			}
			if b.ElapsedSeconds != int64(b.FinishedAt.Sub(b.StartedAt)/time.Second) {
				t.Errorf("finished build elapsed %d, want its run time %v", b.ElapsedSeconds, b.FinishedAt.Sub(b.StartedAt))
			}
			continue
		}
		elapsed := int64(now.Sub(want.BuildSet.Build.StartedAt) / time.Second)
		if b.Phase != "Running" || b.FinishedAt != nil || b.ElapsedSeconds != elapsed || b.RemainingSeconds != b.EstimatedSeconds-elapsed {
			t.Errorf("running build of %d: %+v; want elapsed %d", n, b, elapsed)
		}
		if it.RemainingSeconds != it.EstimatedSeconds-it.ElapsedSeconds {
			t.Errorf("item of %d: remaining %d, want estimated - elapsed", n, it.RemainingSeconds)
		}
	}
	if r := byNum[numB].FailingReasons; len(r) != 1 || !strings.Contains(r[0], "workflow failed") {
		t.Errorf("B's failing reasons %q", r)
	}
	nodes := byNum[numA].Build.Nodes
	if len(nodes) != 2 || nodes[0] != (Node{Name: "lint", Phase: "Succeeded", URL: testArgo + "ci/lint-logs"}) || nodes[1].Phase != "Running" {
		t.Errorf("A's nodes %+v", nodes)
	}
	// Speculative lists leave the hidden changes out.
	for n, want := range map[int][]int{numA: {numA}, numB: {numA, numB}, numC: {numA, numC}, numD: {numA, numC, numD}, numE: {numA, numC, numD, numE}} {
		if got := changeNumbers(byNum[n].Changes); !slices.Equal(got, want) {
			t.Errorf("changes under test with %d: %v, want %v", n, got, want)
		}
	}
	// The check pipeline shows A's item, not the restricted project's.
	var check []int
	for _, q := range st.Pipelines[0].Queues {
		check = append(check, numbers(q.Items)...)
	}
	if !slices.Equal(check, []int{numA}) {
		t.Errorf("check items %v, want only %d", check, numA)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRestrictedAndPrivateChangesNeverAppear(t *testing.T) {
	w := gateScenario(t)
	h := newHarness(t, w)
	secrets := []string{"org/hidden", "secret/tool", "Secret thing", "Private work", "Hidden check",
		itoa(numSecret), itoa(numPriv), itoa(numCheck)}
	for _, target := range []string{"/api/status", "/", "/?q=org", "/api/changes/" + itoa(numA)} {
		rec := h.get(target)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", target, rec.Code)
		}
		for _, s := range secrets {
			if strings.Contains(rec.Body.String(), s) {
				t.Errorf("GET %s shows %q", target, s)
			}
		}
	}
	for _, n := range []int{numSecret, numPriv, numCheck} {
		if rec := h.get("/api/changes/" + itoa(n)); rec.Code != http.StatusNotFound {
			t.Errorf("GET /api/changes/%d: %d, want 404 for a hidden change", n, rec.Code)
		}
	}
}

func TestReasonsNamingAHiddenChangeAreScrubbed(t *testing.T) {
	w := newWorld(t)
	w.change("org/b", 3000, "Head")
	w.change("org/hidden", 3001, "Secret base")
	v := w.change("org/a", 3002, "Needs the secret")
	v.Needs = []pipeline.Need{{Change: pipeline.ChangeKey{Project: "org/hidden", Number: 3001}}}
	w.changes[3001].NeededBy = []pipeline.ChangeKey{v.Key()}
	w.approve(3000)
	w.approve(3001)
	w.approve(3002)
	w.settle()
	w.finish(time.Minute, "gate", 3001, pipeline.PhaseFailed) // behind 3000: not reported yet
	w.settle()
	reasons := w.item("gate", 3002).Failing
	if !strings.Contains(strings.Join(reasons, "\n"), "org/hidden~3001") {
		t.Fatalf("the scenario must make the engine name the hidden change; reasons %q", reasons)
	}
	h := newHarness(t, w)
	st := decode[Status](t, h.get("/api/status").Body.Bytes())
	q := findQueue(t, st, "gate", "integrated@master")
	if got := numbers(q.Items); !slices.Equal(got, []int{3000, 3002}) {
		t.Fatalf("items %v, want 3000 and 3002", got)
	}
	got := strings.Join(q.Items[1].FailingReasons, "\n")
	if strings.Contains(got, "org/hidden") || strings.Contains(got, "3001") || !strings.Contains(got, "(a hidden change)") {
		t.Errorf("reasons %q: want the hidden change replaced by (a hidden change)", got)
	}
}

func TestChangeEndpoint(t *testing.T) {
	w := gateScenario(t)
	h := newHarness(t, w)
	rec := h.get("/api/changes/" + itoa(numA))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/changes/%d: %d %s", numA, rec.Code, rec.Body)
	}
	doc := decode[ChangeItems](t, rec.Body.Bytes())
	var where []string
	for _, it := range doc.Items {
		if it.Change.Number != numA {
			t.Errorf("item of change %d in the answer about %d", it.Change.Number, numA)
		}
		where = append(where, it.Pipeline+"/"+it.ID)
	}
	want := []string{"check/" + w.item("check", numA).ID, "gate/" + w.item("gate", numA).ID}
	if doc.Number != numA || !slices.Equal(where, want) || !doc.Now.Equal(h.clock.Now()) {
		t.Errorf("change %d: items %v at %v, want %v at %v", doc.Number, where, doc.Now, want, h.clock.Now())
	}

	for _, c := range []struct {
		target string
		code   int
		says   string
	}{
		{"/api/changes/999", http.StatusNotFound, "change 999 is in no queue"},
		{"/api/changes/abc", http.StatusBadRequest, `change number "abc"`},
		{"/api/changes/-4", http.StatusBadRequest, `change number "-4"`},
		{"/api/changes/0", http.StatusBadRequest, `change number "0"`},
		{"/api/nothing", http.StatusNotFound, "no API endpoint /api/nothing"},
	} {
		rec := h.get(c.target)
		if rec.Code != c.code || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %q, want %d JSON", c.target, rec.Code, rec.Header().Get("Content-Type"), c.code)
			continue
		}
		if e := decode[apiError](t, rec.Body.Bytes()); !strings.Contains(e.Error, c.says) {
			t.Errorf("GET %s: error %q, want it to say %q", c.target, e.Error, c.says)
		}
	}
}

func TestEveryMethodButGetAndHeadIsRefused(t *testing.T) {
	h := newHarness(t, gateScenario(t))
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		for _, target := range []string{"/", "/api/status", "/api/changes/1001", "/metrics", "/healthz", "/readyz", "/static/app.js", "/nowhere"} {
			rec := h.do(method, target)
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d Allow %q, want 405 GET, HEAD", method, target, rec.Code, rec.Header().Get("Allow"))
			}
		}
	}
	rec := h.do(http.MethodHead, "/api/status")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("HEAD /api/status: %d %q, want 200 JSON", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestBeforeTheFirstSnapshotTheAPIAnswers503(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w)
	h.snaps.set(nil)
	for _, target := range []string{"/api/status", "/api/changes/1"} {
		rec := h.get(target)
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("GET %s: %d, want 503", target, rec.Code)
		}
		if e := decode[apiError](t, rec.Body.Bytes()); !strings.Contains(e.Error, "not loaded its state yet") {
			t.Errorf("GET %s: %q", target, e.Error)
		}
	}
	rec := h.get("/")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "no state loaded yet") {
		t.Errorf("GET /: %d\n%s", rec.Code, rec.Body)
	}
}

func TestViewFollowsTurnsAndClock(t *testing.T) {
	w := gateScenario(t)
	h := newHarness(t, w)
	first := decode[Status](t, h.get("/api/status").Body.Bytes())

	// The same turn: the view is not rebuilt even if the snapshot source
	// hands over another state object; the durations follow the clock.
	stale := w.snapshot()
	stale.State = pipeline.NewState()
	h.snaps.set(stale)
	h.clock.set(h.clock.Now().Add(10 * time.Second))
	again := decode[Status](t, h.get("/api/status").Body.Bytes())
	if len(findQueue(t, again, "gate", "integrated@master").Items) != 5 {
		t.Fatalf("the view of turn %d was rebuilt within the turn", again.Turn)
	}
	a0 := findQueue(t, first, "gate", "integrated@master").Items[0]
	a1 := findQueue(t, again, "gate", "integrated@master").Items[0]
	if a1.EnqueuedSeconds != a0.EnqueuedSeconds+10 || a1.Build.ElapsedSeconds != a0.Build.ElapsedSeconds+10 ||
		a1.Build.RemainingSeconds != a0.Build.RemainingSeconds-10 {
		t.Errorf("after 10s: enqueued %d→%d, elapsed %d→%d, remaining %d→%d", a0.EnqueuedSeconds, a1.EnqueuedSeconds,
			a0.Build.ElapsedSeconds, a1.Build.ElapsedSeconds, a0.Build.RemainingSeconds, a1.Build.RemainingSeconds)
	}

	// A new turn is read.
	w.finish(time.Second, "gate", numA, pipeline.PhaseSucceeded)
	h.snaps.set(w.snapshot())
	next := decode[Status](t, h.get("/api/status").Body.Bytes())
	if next.Turn != w.turn {
		t.Fatalf("turn %d, want %d", next.Turn, w.turn)
	}
	if b := findQueue(t, next, "gate", "integrated@master").Items[0].Build; b.Phase != "Succeeded" {
		t.Errorf("A's build after its success: %s", b.Phase)
	}
}

func TestNewChecksItsOptions(t *testing.T) {
	w := newWorld(t)
	m, err := NewMetrics(MetricsOptions{Config: w.cfg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "Config, Snapshot, Metrics") {
		t.Errorf("New without options: %v", err)
	}
	_, err = New(Options{Config: w.cfg, Snapshot: func() *scheduler.Snapshot { return nil }, Metrics: m, Refresh: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "Options.Refresh is negative") {
		t.Errorf("New with a negative refresh: %v", err)
	}
	if _, err := NewMetrics(MetricsOptions{}); err == nil || !strings.Contains(err.Error(), "MetricsOptions.Config") {
		t.Errorf("NewMetrics without a config: %v", err)
	}
}

func TestSplicedStatusIsWhatEncodingJSONWouldSay(t *testing.T) {
	w := gateScenario(t)
	h := newHarness(t, w)
	body := h.get("/api/status").Body.Bytes()
	got := decode[Status](t, body)
	h.srv.mu.Lock()
	want, err := json.Marshal(&h.srv.view.status)
	h.srv.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if w := decode[Status](t, want); !reflect.DeepEqual(got, w) {
		t.Errorf("the spliced document differs from encoding/json's:\n got %s\nwant %s", body, want)
	}
	// Every time field is there, zero or not.
	var raw struct {
		Pipelines []struct {
			Queues []struct {
				Items []map[string]any `json:"items"`
			} `json:"queues"`
		} `json:"pipelines"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range raw.Pipelines {
		for _, q := range p.Queues {
			for _, it := range q.Items {
				n++
				b, _ := it["build"].(map[string]any)
				for _, k := range []string{"enqueuedSeconds", "elapsedSeconds", "estimatedSeconds", "remainingSeconds"} {
					if _, ok := it[k]; !ok {
						t.Errorf("item %v has no %s", it["id"], k)
					}
				}
				for _, k := range []string{"elapsedSeconds", "estimatedSeconds", "remainingSeconds"} {
					if _, ok := b[k]; !ok {
						t.Errorf("build of item %v has no %s", it["id"], k)
					}
				}
			}
		}
	}
	if n != 6 {
		t.Errorf("%d items in the document, want 6", n)
	}
}

func TestStatusIsGzippedForClientsThatAskForIt(t *testing.T) {
	h := newHarness(t, gateScenario(t))
	plain := h.get("/api/status")
	req := httptest.NewRequest(http.MethodGet, "/api/status", nil)
	req.Header.Set("Accept-Encoding", "br;q=1.0, gzip;q=0.8")
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("Content-Encoding %q Vary %q", rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, plain.Body.Bytes()) || rec.Body.Len() >= plain.Body.Len() {
		t.Errorf("gzipped %d bytes decompress to %d bytes, not the %d of the plain answer", rec.Body.Len(), len(body), plain.Body.Len())
	}
	req.Header.Set("Accept-Encoding", "gzip;q=0, identity")
	rec = httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "" || !bytes.Equal(rec.Body.Bytes(), plain.Body.Bytes()) {
		t.Errorf("gzip;q=0 got Content-Encoding %q", rec.Header().Get("Content-Encoding"))
	}
}
