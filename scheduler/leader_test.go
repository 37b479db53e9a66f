package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/store"
)

// TestClaimStore: a new leader keeps its database only when no other
// instance led since it was written, sets it aside otherwise, and records
// the term either way.
func TestClaimStore(t *testing.T) {
	const lease = "seakeeper/seakeeper"
	term := func(uid string, n int32) *leaseTerm {
		return &leaseTerm{Lease: lease, UID: uid, Transitions: n, Identity: "seakeeper-0"}
	}
	for _, tc := range []struct {
		name      string
		db        bool       // a database exists
		prev      *leaseTerm // the term file, if any
		now       leaseTerm
		setAside  string // "": kept; else a part of the reason logged
		olderKept bool   // an older .stale exists and is replaced
	}{
		{name: "first term, no database", now: *term("u1", 0)},
		{name: "database written without leader election", db: true, now: *term("u1", 7)},
		{name: "re-acquired after a crash", db: true, prev: term("u1", 3), now: *term("u1", 3)},
		{name: "re-acquired after its own release", db: true, prev: term("u1", 3), now: *term("u1", 4)},
		{name: "another instance led since", db: true, prev: term("u1", 3), now: *term("u1", 5), setAside: "lease transitions 3 then, 5 now"},
		{name: "the Lease was re-created", db: true, prev: term("u1", 3), now: *term("u2", 4), setAside: "re-created"},
		{name: "transitions went down", db: true, prev: term("u1", 5), now: *term("u1", 1), setAside: "another instance led"},
		{name: "another Lease", db: true, prev: &leaseTerm{Lease: "other/seakeeper", UID: "u1", Transitions: 3},
			now: *term("u1", 3), setAside: "written under Lease other/seakeeper"},
		{name: "an older stale copy is replaced", db: true, prev: term("u1", 1), now: *term("u1", 9), setAside: "another instance", olderKept: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, dbFileName)
			if tc.db {
				writeTestFile(t, db, "the database")
			}
			if tc.olderKept {
				writeTestFile(t, db+".stale", "an older database")
			}
			if tc.prev != nil {
				if err := writeTerm(dir, *tc.prev); err != nil {
					t.Fatal(err)
				}
			}
			logs := &testlog.Buffer{}
			if err := claimStore(dir, tc.now, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
				t.Fatal(err)
			}
			current, _ := os.ReadFile(db)
			stale, _ := os.ReadFile(db + ".stale")
			wantDB, wantStale := "", ""
			switch {
			case tc.setAside != "":
				wantStale = "the database"
			case tc.db:
				wantDB = "the database"
			}
			if tc.olderKept && tc.setAside == "" {
				wantStale = "an older database"
			}
			if string(current) != wantDB || string(stale) != wantStale {
				t.Errorf("database %q and stale copy %q, want %q and %q", current, stale, wantDB, wantStale)
			}
			if got := logs.String(); tc.setAside == "" && got != "" ||
				tc.setAside != "" && (!strings.Contains(got, tc.setAside) || !strings.Contains(got, "level=WARN")) {
				t.Errorf("logged %q, want a warning saying %q", got, tc.setAside)
			}
			data, err := os.ReadFile(filepath.Join(dir, termFileName))
			if err != nil {
				t.Fatal(err)
			}
			var got leaseTerm
			if err := json.Unmarshal(data, &got); err != nil || got != tc.now {
				t.Errorf("term file holds %+v (%v), want %+v", got, err, tc.now)
			}
		})
	}

	t.Run("unreadable term file", func(t *testing.T) {
		dir := t.TempDir()
		writeTestFile(t, filepath.Join(dir, termFileName), "{not json")
		err := claimStore(dir, *term("u1", 1), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), termFileName) {
			t.Errorf("claimStore = %v, want an error naming the term file", err)
		}
	})
}

// testElection is a leader election configuration with short timings.
func testElection(namespace, name, identity string) LeaderElectionConfig {
	return LeaderElectionConfig{Enabled: true, Namespace: namespace, Name: name, Identity: identity,
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond}
}

// leaseHolder returns the holder of a Lease ("" when released).
func leaseHolder(t *testing.T, kc kubernetes.Interface, ns, name string) string {
	t.Helper()
	l, err := kc.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// stealLease makes "intruder" the holder of a Lease for an hour, as
// another instance taking it over would.
func stealLease(t *testing.T, kc kubernetes.Interface, ns, name string) {
	t.Helper()
	leases := kc.CoordinationV1().Leases(ns)
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := leases.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		intruder, hour, now := "intruder", int32(3600), metav1.NewMicroTime(time.Now())
		l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &intruder, LeaseDurationSeconds: &hour,
			AcquireTime: &now, RenewTime: &now, LeaseTransitions: l.Spec.LeaseTransitions}
		_, err = leases.Update(context.Background(), l, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// termLog records when each elector starts ("a+") and stops ("a-")
// leading.
type termLog struct {
	mu     sync.Mutex
	events []string
}

func (l *termLog) add(ev string) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *termLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// lead is a term that lasts until its context ends.
func (l *termLog) lead(id string) func(context.Context) error {
	return l.slowLead(id, nil)
}

// slowLead is a term that, once its context ended, takes until finish
// closes to stop (at once if finish is nil).
func (l *termLog) slowLead(id string, finish <-chan struct{}) func(context.Context) error {
	return func(ctx context.Context) error {
		l.add(id + "+")
		<-ctx.Done()
		if finish != nil {
			l.add(id + " stopping")
			<-finish
		}
		l.add(id + "-")
		return nil
	}
}

// runningElector is an elector whose run is under way.
type runningElector struct {
	*elector
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned err
	err    error
}

// TestElector: client-go leader election on a real Lease: one of two
// electors leads; the other takes over once the leader's context ends and
// its term is over, never before; a leader whose Lease is taken ends its
// term with ErrLeaseLost; a term ending in an error releases the Lease.
func TestElector(t *testing.T) {
	c := kubetest.StartShared(t)
	kc := c.AdminClient()
	ns := c.UniqueName("elector")
	c.CreateNamespace(t, ns)
	logger := slog.New(slog.DiscardHandler)
	start := func(t *testing.T, cfg LeaderElectionConfig, lead func(context.Context) error) *runningElector {
		t.Helper()
		e, err := newElector(cfg, kc.CoordinationV1(), logger)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &runningElector{elector: e, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			r.err = e.run(ctx, lead)
		}()
		t.Cleanup(func() {
			cancel()
			<-r.done
		})
		return r
	}

	t.Run("one leads, the other takes over after a release", func(t *testing.T) {
		const lease = "takeover"
		var log termLog
		electors := map[string]*runningElector{}
		finish := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
		for _, id := range []string{"a", "b"} {
			electors[id] = start(t, testElection(ns, lease, id), log.slowLead(id, finish[id]))
		}
		eventually(t, 30*time.Second, "leader", func() bool { return len(log.get()) > 0 })
		first := strings.TrimSuffix(log.get()[0], "+")
		second := map[string]string{"a": "b", "b": "a"}[first]
		close(finish[second])
		defer close(finish[first])
		if h := leaseHolder(t, kc, ns, lease); h != first {
			t.Errorf("%s leads but the Lease is held by %q", first, h)
		}
		if !electors[first].isLeader() || electors[second].isLeader() {
			t.Errorf("isLeader: %s %v, %s %v", first, electors[first].isLeader(), second, electors[second].isLeader())
		}
		firstTerm, err := electors[first].term(context.Background())
		if err != nil {
			t.Fatal(err)
		}

		// The first leader's context ends, but its term takes a while to
		// stop: it keeps the Lease, renewing it past a whole
		// lease-duration, and the other does not lead meanwhile.
		electors[first].cancel()
		eventually(t, 30*time.Second, "the first term to begin stopping", func() bool { return len(log.get()) == 2 })
		if electors[first].isLeader() {
			t.Error("isLeader is true once the term's context ended")
		}
		stopping := time.Now()
		le := testElection(ns, lease, first)
		eventually(t, 30*time.Second, "renewals while the term stops", func() bool {
			l, err := kc.CoordinationV1().Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if h := l.Spec.HolderIdentity; h == nil || *h != first {
				t.Fatalf("the Lease went to %q while %s's term was stopping", leaseHolder(t, kc, ns, lease), first)
			}
			return l.Spec.RenewTime != nil && l.Spec.RenewTime.After(stopping.Add(le.LeaseDuration))
		})

		stopped := time.Now()
		finish[first] <- struct{}{}
		if <-electors[first].done; electors[first].err != nil {
			t.Errorf("the first leader's run: %v", electors[first].err)
		}
		eventually(t, 30*time.Second, "takeover", func() bool { return len(log.get()) == 4 })
		t.Logf("%s took over %v after %s's term ended", second, time.Since(stopped).Round(time.Millisecond), first)
		if got, want := log.get(), []string{first + "+", first + " stopping", first + "-", second + "+"}; !slices.Equal(got, want) {
			t.Errorf("terms %v, want %v: two electors led at once", got, want)
		}
		if electors[first].isLeader() || !electors[second].isLeader() {
			t.Errorf("after the handover isLeader: %s %v, %s %v", first, electors[first].isLeader(), second, electors[second].isLeader())
		}
		secondTerm, err := electors[second].term(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if secondTerm.UID != firstTerm.UID || secondTerm.Transitions != firstTerm.Transitions+1 {
			t.Errorf("terms %+v then %+v: a handover after a release should count one transition", firstTerm, secondTerm)
		}

		electors[second].cancel()
		if <-electors[second].done; electors[second].err != nil {
			t.Errorf("the second leader's run: %v", electors[second].err)
		}
		if h := leaseHolder(t, kc, ns, lease); h != "" {
			t.Errorf("the Lease is held by %q after the last leader stopped, want it released", h)
		}
	})

	t.Run("a taken Lease ends the term with ErrLeaseLost", func(t *testing.T) {
		var log termLog
		e := start(t, testElection(ns, "stolen", "c"), log.lead("c"))
		eventually(t, 30*time.Second, "leader", func() bool { return len(log.get()) == 1 })
		stealLease(t, kc, ns, "stolen")
		select {
		case <-e.done:
		case <-time.After(60 * time.Second):
			t.Fatal("run did not return after the Lease was taken")
		}
		if !errors.Is(e.err, ErrLeaseLost) {
			t.Errorf("run = %v, want ErrLeaseLost", e.err)
		}
		if got := log.get(); !slices.Equal(got, []string{"c+", "c-"}) || e.isLeader() {
			t.Errorf("terms %v, isLeader %v", got, e.isLeader())
		}
		if h := leaseHolder(t, kc, ns, "stolen"); h != "intruder" {
			t.Errorf("the Lease is held by %q, want the intruder still", h)
		}

		// A standby of the intruder's Lease stops when its context ends.
		var standbyLog termLog
		standby := start(t, testElection(ns, "stolen", "e"), standbyLog.lead("e"))
		eventually(t, 30*time.Second, "the standby to see the intruder", func() bool { return standby.leader() == "intruder" })
		standby.cancel()
		if <-standby.done; standby.err != nil || len(standbyLog.get()) != 0 || standby.isLeader() {
			t.Errorf("standby: run = %v, terms %v, isLeader %v", standby.err, standbyLog.get(), standby.isLeader())
		}
	})

	t.Run("a failed term releases the Lease", func(t *testing.T) {
		boom := errors.New("boom")
		e := start(t, testElection(ns, "failed", "d"), func(context.Context) error { return boom })
		if <-e.done; !errors.Is(e.err, boom) || errors.Is(e.err, ErrLeaseLost) {
			t.Errorf("run = %v, want the term's error", e.err)
		}
		if h := leaseHolder(t, kc, ns, "failed"); h != "" {
			t.Errorf("the Lease is held by %q after a failed term, want it released", h)
		}
	})
}

// servedDaemon is one Serve of TestServeLeaderElection.
type servedDaemon struct {
	cfg    *Config
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned err
	err    error
	addrs  chan Addrs
	public chan Daemon
	logs   *testlog.Buffer
}

// leading waits until d leads, and returns what its public handler got.
func (d *servedDaemon) leading(t *testing.T, failure string) Daemon {
	t.Helper()
	select {
	case dm := <-d.public:
		return dm
	case <-d.done:
		t.Fatalf("%s: Serve returned %v", d.cfg.LeaderElection.Identity, d.err)
	case <-time.After(60 * time.Second):
		t.Fatal(failure)
	}
	return Daemon{}
}

func serveDaemon(t *testing.T, cfg *Config) *servedDaemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &servedDaemon{cfg: cfg, cancel: cancel, done: make(chan struct{}), addrs: make(chan Addrs, 1),
		public: make(chan Daemon, 1), logs: &testlog.Buffer{}}
	go func() {
		defer close(d.done)
		d.err = Serve(ctx, cfg, ServeOptions{
			Logger:      slog.New(slog.NewJSONHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			SettleDelay: -1,
			NoSync:      true,
			Started:     func(a Addrs) { d.addrs <- a },
			Public: func(dm Daemon) (http.Handler, error) {
				d.public <- dm
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "leader") }), nil
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return")
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", cfg.LeaderElection.Identity, d.logs)
		}
	})
	return d
}

// TestServeLeaderElection: two daemons with leader election: the standby
// serves health only and has opened nothing and talks to nobody; when the
// leader stops, the standby takes over, ticks and does housekeeping; a leader whose database is from
// an older term sets it aside; a leader whose Lease is taken stops, closes
// its store and returns ErrLeaseLost.
func TestServeLeaderElection(t *testing.T) {
	c := kubetest.StartShared(t)
	c.InstallArgoCRDs(t)
	kc := c.AdminClient()
	ns := c.UniqueName("seakeeper")
	c.CreateNamespace(t, ns)
	w := newGerritWorld(t)
	kubeconfig := kubetest.WriteKubeconfig(t, c.AdminConfig(), "")
	config := func(id, stateDir string) *Config {
		le := testElection(ns, "seakeeper", id)
		return w.config(t, kubeconfig, stateDir, fmt.Sprintf(`leader-election:
  enabled: true
  namespace: %s
  identity: %s
  lease-duration: %v
  renew-deadline: %v
  retry-period: %v
tick-interval: 1s
housekeeping-interval: 1s
`, ns, id, le.LeaseDuration, le.RenewDeadline, le.RetryPeriod))
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	sessions := w.srv.SSH().Sessions

	a := serveDaemon(t, config("a", dirA))
	addrA := <-a.addrs
	leaderA := a.leading(t, "a did not start leading")
	eventually(t, 30*time.Second, "a's stream-events session", func() bool { return sessions() == 1 })
	if !leaderA.IsLeader() {
		t.Error("a leads, but its IsLeader is false")
	}
	if code, body := get(t, addrA.Public, "/"); code != 200 || body != "leader" {
		t.Errorf("a's public listener: %d %q", code, body)
	}

	b := serveDaemon(t, config("b", dirB))
	addrB := <-b.addrs
	eventually(t, 30*time.Second, "b to see a as leader", func() bool {
		code, body := get(t, addrB.Public, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `standby: "a" leads`)
	})
	if code, body := get(t, addrB.Public, "/healthz"); code != 200 || !strings.Contains(body, "standby") {
		t.Errorf("b's /healthz: %d %q", code, body)
	}
	if code, _ := get(t, addrB.Internal, "/git/demo/app/info/refs?service=git-upload-pack"); code != http.StatusServiceUnavailable {
		t.Errorf("b's git endpoint answers %d, want 503", code)
	}
	select {
	case <-b.public:
		t.Fatal("b built its public handler while a leads")
	default:
	}
	for _, f := range []string{dbFileName, "git", termFileName} {
		if exists(filepath.Join(dirB, f)) {
			t.Errorf("the standby made %s", f)
		}
	}
	if n := sessions(); n != 1 {
		t.Errorf("%d stream-events sessions while b is standby, want a's only", n)
	}

	// a stops: b takes over.
	a.cancel()
	if <-a.done; a.err != nil {
		t.Errorf("a: Serve = %v", a.err)
	}
	if leaderA.IsLeader() {
		t.Error("a's IsLeader is true after it stopped")
	}
	leaderB := b.leading(t, "b did not take over")
	if !leaderB.IsLeader() || leaseHolder(t, kc, ns, "seakeeper") != "b" {
		t.Errorf("b took over: IsLeader %v, Lease held by %q", leaderB.IsLeader(), leaseHolder(t, kc, ns, "seakeeper"))
	}
	eventually(t, 30*time.Second, "b's stream-events session", func() bool {
		return strings.Contains(b.logs.String(), "stream-events connected")
	})
	if !exists(filepath.Join(dirB, dbFileName)) || !exists(filepath.Join(dirB, termFileName)) {
		t.Error("b leads without its database and term file")
	}
	// Its loop ticks (no other event makes a turn here) and its
	// housekeeping runs.
	eventually(t, 30*time.Second, "b's ticks and housekeeping", func() bool {
		snap := leaderB.Scheduler.Snapshot()
		return snap != nil && snap.Turn >= 2 && strings.Contains(b.logs.String(), "housekeeping: kept the refs of live buildsets")
	})

	// a again, standby; b stops: a leads with a database from before b's
	// term, which it sets aside.
	a = serveDaemon(t, config("a", dirA))
	addrA = <-a.addrs
	eventually(t, 30*time.Second, "a to see b as leader", func() bool {
		_, body := get(t, addrA.Public, "/readyz")
		return strings.Contains(body, `standby: "b" leads`)
	})
	b.cancel()
	if <-b.done; b.err != nil {
		t.Errorf("b: Serve = %v", b.err)
	}
	leaderA = a.leading(t, "a did not take over")
	if !exists(filepath.Join(dirA, dbFileName+".stale")) || !strings.Contains(a.logs.String(), "another instance led since") {
		t.Errorf("a's database from before b's term was not set aside; log:\n%s", a.logs)
	}

	// The Lease is taken from a: it stops and says so.
	stealLease(t, kc, ns, "seakeeper")
	select {
	case <-a.done:
	case <-time.After(60 * time.Second):
		t.Fatal("a did not stop after its Lease was taken")
	}
	if !errors.Is(a.err, ErrLeaseLost) {
		t.Errorf("a: Serve = %v, want ErrLeaseLost", a.err)
	}
	if leaderA.IsLeader() {
		t.Error("a's IsLeader is true after it lost the Lease")
	}
	st, err := store.Open(filepath.Join(dirA, dbFileName), store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("a's store is still open after Serve returned: %v", err)
	}
	st.Close()
}
