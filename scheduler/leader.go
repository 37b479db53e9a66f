package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Leader election: Serve acts only while this instance holds the Lease
// of leader-election; see Serve for the order of things and what a new
// leader recovers.

// ErrLeaseLost is matched (errors.Is) by Serve's error when this instance
// stopped acting because it could not renew its Lease. The process should
// exit and be restarted: it then starts again as a standby.
var ErrLeaseLost = errors.New("lost the leader lease")

// elector campaigns for the Lease with client-go's leader election.
type elector struct {
	cfg     LeaderElectionConfig
	leases  coordinationv1client.LeasesGetter
	log     *slog.Logger
	le      *leaderelection.LeaderElector
	started chan context.Context
	leading atomic.Bool
}

// newElector prepares the election; cfg.Identity must be set.
func newElector(cfg LeaderElectionConfig, leases coordinationv1client.LeasesGetter, log *slog.Logger) (*elector, error) {
	if cfg.Identity == "" {
		return nil, errors.New("leader election: no identity for this instance (leader-election.identity)")
	}
	e := &elector{cfg: cfg, leases: leases, log: log, started: make(chan context.Context, 1)}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
			Client:     leases,
			LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
		},
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            cfg.Namespace + "/" + cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			// Run calls it at most once, in a goroutine of its own.
			OnStartedLeading: func(ctx context.Context) { e.started <- ctx },
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				log.Info("leader election: new leader", "leader", id, "self", id == cfg.Identity)
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	e.le = le
	return e, nil
}

// run campaigns until ctx ends. Once this instance holds the Lease, run
// calls lead with a context that ends when ctx ends or the Lease is lost,
// and gives the Lease up only after lead returned, so that a handover
// never has two instances acting at once. It returns nil when ctx ended,
// lead's error, or an error matching ErrLeaseLost. Call it once.
func (e *elector) run(ctx context.Context, lead func(ctx context.Context) error) error {
	// The election outlives ctx until lead has returned.
	electCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		e.le.Run(electCtx)
	}()
	e.log.Info("leader election: campaigning", "lease", e.cfg.Namespace+"/"+e.cfg.Name, "identity", e.cfg.Identity)
	var leadCtx context.Context
	select {
	case <-ctx.Done():
		stop()
		<-ran
		return nil
	case leadCtx = <-e.started:
	}

	runCtx, cancel := context.WithCancel(leadCtx)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	e.leading.Store(true)
	context.AfterFunc(runCtx, func() { e.leading.Store(false) })
	e.log.Info("leader election: leading", "lease", e.cfg.Namespace+"/"+e.cfg.Name, "identity", e.cfg.Identity)
	err := lead(runCtx)
	lost := ctx.Err() == nil && leadCtx.Err() != nil
	cancel()
	e.leading.Store(false)
	stop()
	<-ran // Run released the Lease (ReleaseOnCancel) if it still held it
	if lost {
		return errors.Join(fmt.Errorf("leader election: %w %s/%s (identity %q): it could not be renewed within %v; exiting so that the instance restarts as a standby",
			ErrLeaseLost, e.cfg.Namespace, e.cfg.Name, e.cfg.Identity, e.cfg.RenewDeadline), err)
	}
	return err
}

// isLeader reports whether this instance leads and has not begun to stop.
func (e *elector) isLeader() bool { return e.leading.Load() }

// leader returns the identity of the last leader observed.
func (e *elector) leader() string { return e.le.GetLeader() }

// term describes the Lease as this instance holds it.
func (e *elector) term(ctx context.Context) (leaseTerm, error) {
	l, err := e.leases.Leases(e.cfg.Namespace).Get(ctx, e.cfg.Name, metav1.GetOptions{})
	if err != nil {
		return leaseTerm{}, fmt.Errorf("leader election: reading Lease %s/%s: %w", e.cfg.Namespace, e.cfg.Name, err)
	}
	if h := l.Spec.HolderIdentity; h == nil || *h != e.cfg.Identity {
		return leaseTerm{}, fmt.Errorf("leader election: %w %s/%s: it is no longer held by %q", ErrLeaseLost, e.cfg.Namespace, e.cfg.Name, e.cfg.Identity)
	}
	t := leaseTerm{Lease: e.cfg.Namespace + "/" + e.cfg.Name, UID: string(l.UID), Identity: e.cfg.Identity}
	if l.Spec.LeaseTransitions != nil {
		t.Transitions = *l.Spec.LeaseTransitions
	}
	return t, nil
}

// The database of a new leader.
//
// Each instance has a state-dir of its own (a StatefulSet gives every pod
// its own volume), so a new leader's database is not the old leader's: it
// is empty, or it is what this instance left when it last led, possibly
// long ago. An old database is worse than an empty one: its outbox would
// post outdated reports again and its queues would resubmit builds for
// changes merged since. So next to the database a term file records the
// Lease term under which it was last opened (the Lease's UID and its
// transition count, which client-go raises each time a different holder
// takes the Lease, and a release counts as one). If another instance led
// since (the count rose by more than one, or the Lease is another one),
// the database is renamed to seakeeper.db.stale, with a warning, and the
// term starts from an empty state. A database without a term file was
// written without leader election, by the only instance, and is kept.
//
// From that database a new leader recovers as after any restart; what the
// old leader knew and it does not is derived again from Gerrit and
// Kubernetes. Its start-up resync finds in Gerrit the open changes an
// approval trigger would have enqueued and enqueues them again; the
// Workflows the old leader started are found by label and, as no item of
// the new state wants them, cancelled; the new items get new ones. The
// old leader's outbox is gone with it: each of its actions is either
// done, or derived again. What is not recovered: items of pipelines
// without an approval trigger (check on patchset-created, post on
// ref-updated) that had not reported (a "recheck" or a new patchset
// enqueues them again); and, since the history of reports is per
// database, changes with an approval that already failed under another
// leader are tested, and reported on, once more.

const (
	dbFileName   = "seakeeper.db"
	termFileName = "leader-term.json"
)

// leaseTerm identifies a term of leadership.
type leaseTerm struct {
	Lease       string `json:"lease"` // namespace/name
	UID         string `json:"uid"`
	Transitions int32  `json:"transitions"`
	Identity    string `json:"identity"`
}

// claimStore readies the database in dir for term t: it sets it aside if
// another instance led since it was written, then records t.
func claimStore(dir string, t leaseTerm, log *slog.Logger) error {
	termPath := filepath.Join(dir, termFileName)
	var prev *leaseTerm
	data, err := os.ReadFile(termPath)
	switch {
	case err == nil:
		prev = &leaseTerm{}
		if err := json.Unmarshal(data, prev); err != nil {
			return fmt.Errorf("leader election: %s: %v (remove the file to keep the database as it is)", termPath, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("leader election: %w", err)
	}
	db := filepath.Join(dir, dbFileName)
	if _, err := os.Stat(db); err == nil {
		if why := staleReason(prev, t); why != "" {
			aside := db + ".stale"
			if err := os.Rename(db, aside); err != nil {
				return fmt.Errorf("leader election: setting aside the database of an older term: %w", err)
			}
			log.Warn("leader election: this instance's database is from an older term and is set aside; "+
				"the state starts empty and is rebuilt from Gerrit", "reason", why, "set_aside", aside)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("leader election: %w", err)
	}
	return writeTerm(dir, t)
}

// staleReason says why a database last opened in term prev must not be
// used in term t ("" when it may).
func staleReason(prev *leaseTerm, t leaseTerm) string {
	switch {
	case prev == nil:
		return ""
	case prev.Lease != t.Lease:
		return fmt.Sprintf("it was written under Lease %s, this term holds %s", prev.Lease, t.Lease)
	case prev.UID != t.UID:
		return fmt.Sprintf("Lease %s was re-created since it was written", t.Lease)
	case t.Transitions < prev.Transitions || t.Transitions-prev.Transitions > 1:
		return fmt.Sprintf("another instance led since it was written (lease transitions %d then, %d now)", prev.Transitions, t.Transitions)
	}
	return ""
}

// writeTerm records t in dir, atomically.
func writeTerm(dir string, t leaseTerm) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, termFileName+".*")
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	err = errors.Join(err, tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, termFileName))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("leader election: recording the term: %w", err)
	}
	return nil
}

// forgetTerm removes the term file: without leader election the database
// is written outside any term, and is current whatever the file says.
func forgetTerm(dir string) error {
	if err := os.Remove(filepath.Join(dir, termFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// handlerSwitch serves with a handler that changes when this instance
// starts and stops acting.
type handlerSwitch struct {
	mu     sync.Mutex
	h      http.Handler
	gen    int
	active map[int]int           // requests under way, per generation
	idle   map[int]chan struct{} // closed once a replaced generation has none
}

func newHandlerSwitch(h http.Handler) *handlerSwitch {
	return &handlerSwitch{h: h, active: map[int]int{}, idle: map[int]chan struct{}{}}
}

func (s *handlerSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h, g := s.h, s.gen
	s.active[g]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.active[g]--; s.active[g] == 0 {
			delete(s.active, g)
			if ch := s.idle[g]; ch != nil {
				close(ch)
				delete(s.idle, g)
			}
		}
		s.mu.Unlock()
	}()
	h.ServeHTTP(w, r)
}

// set serves new requests with h, and waits at most wait (wall-clock time,
// as http.Server.Shutdown) for the requests of the previous handler. It
// reports whether they all ended.
func (s *handlerSwitch) set(h http.Handler, wait time.Duration) bool {
	s.mu.Lock()
	old := s.gen
	s.h = h
	s.gen++
	if s.active[old] == 0 {
		s.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	s.idle[old] = ch
	s.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// notActing answers while this instance does not act: /healthz says the
// process is alive, anything else is 503 with status() as the reason, so
// that readiness probes route traffic to the leader only.
func notActing(status func() string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			fmt.Fprintf(w, "ok: %s\n", status())
			return
		}
		w.Header().Set("Retry-After", "5")
		http.Error(w, "seakeeper: "+status(), http.StatusServiceUnavailable)
	})
}

// serveElector prepares the leader election of cfg; its Kubernetes client
// comes from ServeOptions.RestConfig or the kubeconfig, even when
// ServeOptions.Workflows replaces the Argo client.
func serveElector(cfg *Config, opts ServeOptions, log *slog.Logger) (*elector, error) {
	le := cfg.LeaderElection
	if le.Identity == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return nil, fmt.Errorf("leader election: no leader-election.identity and no host name: %v", err)
		}
		le.Identity = host
	}
	restCfg, err := restConfig(cfg, opts)
	if err != nil {
		return nil, err
	}
	kc, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return newElector(le, kc.CoordinationV1(), log)
}
