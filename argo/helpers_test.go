package argo

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// fakeSource is a ConfigSource over a map, counting reads.
type fakeSource struct {
	mu    sync.Mutex
	files map[string]string // project -> content; missing: fs.ErrNotExist
	shas  map[string]string
	err   error // returned by every read when set
	reads int
}

func (s *fakeSource) ConfigFile(_ context.Context, project, path string) ([]byte, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.err != nil {
		return nil, "", s.err
	}
	if path != ConfigFileName {
		return nil, "", fmt.Errorf("unexpected path %q", path)
	}
	content, ok := s.files[project]
	if !ok {
		return nil, s.shas[project], fs.ErrNotExist
	}
	return []byte(content), s.shas[project], nil
}

func (s *fakeSource) set(project, sha, content string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files, s.shas = map[string]string{}, map[string]string{}
	}
	s.files[project], s.shas[project] = content, sha
}

func (s *fakeSource) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

const templateRefConfig = "workflowTemplateRef: {name: ci}\ntimeout: 30m\n"

// env is an adapter over the generated fake clientset, with a fake clock.
type env struct {
	t       testing.TB
	cs      *fake.Clientset
	clock   *clocktesting.FakeClock
	src     *fakeSource
	a       *Adapter
	cancel  context.CancelFunc
	watches chan string // namespaces whose watch started
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newEnv starts an adapter over a fake clientset whose watches never fill
// up (see newFanout), and waits until the informer really watches: the fake
// loses writes made between the informer's list and its watch.
func newEnv(t testing.TB, mod func(*Options), objs ...*wfv1.Workflow) *env {
	t.Helper()
	cs := fake.NewSimpleClientset()
	for _, o := range objs {
		if err := cs.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, cs: cs, clock: clocktesting.NewFakeClock(t0), src: &fakeSource{}, watches: make(chan string, 16)}
	e.src.set("org/app", "sha1", templateRefConfig)
	newFanout(t, cs, e.watches)
	opts := Options{
		Client:  cs,
		Configs: NewConfigCache(e.src, ConfigCacheOptions{Clock: e.clock}),
		Render:  RenderOptions{InternalURL: "http://seakeeper.internal:8081/"},
		ArgoURL: "https://argo.example.org/",
		Clock:   e.clock,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&opts)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.a, e.cancel = a, cancel
	t.Cleanup(cancel)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n := 1
	if opts.Namespaced {
		n = len(opts.Namespaces)
	}
	for i := 0; i < n; i++ {
		e.waitWatch()
	}
	return e
}

func (e *env) waitWatch() string {
	e.t.Helper()
	select {
	case ns := <-e.watches:
		return ns
	case <-time.After(10 * time.Second):
		e.t.Fatal("the informer never started watching")
		return ""
	}
}

// next returns the next result, failing after a while.
func (e *env) next() pipeline.BuildResult {
	e.t.Helper()
	select {
	case r := <-e.a.Results():
		return r
	case <-time.After(10 * time.Second):
		e.t.Fatal("no result")
		return pipeline.BuildResult{}
	}
}

// none checks that no result arrives for a moment.
func (e *env) none() {
	e.t.Helper()
	select {
	case r := <-e.a.Results():
		e.t.Fatalf("unexpected result %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
}

// eventually polls cond.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// get returns the Workflow as the fake API server holds it.
func (e *env) get(ns, name string) *wfv1.Workflow {
	e.t.Helper()
	wf, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return wf
}

// list returns the Workflows of ns.
func (e *env) list(ns string) []wfv1.Workflow {
	e.t.Helper()
	l, err := e.cs.ArgoprojV1alpha1().Workflows(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return l.Items
}

// setStatus plays the Argo controller: it updates the Workflow's status.
func (e *env) setStatus(ns, name string, mod func(*wfv1.WorkflowStatus)) {
	e.t.Helper()
	wf := e.get(ns, name)
	mod(&wf.Status)
	if _, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Update(context.Background(), wf, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// actions returns the verbs the adapter sent for workflows, in order.
func (e *env) verbs() []string {
	var out []string
	for _, a := range e.cs.Actions() {
		if a.GetResource().Resource == "workflows" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
			out = append(out, a.GetVerb())
		}
	}
	return out
}

// build returns a build action for change n,ps of org/app in pipeline p.
func build(p string, n, ps int, prio int32) pipeline.Action {
	bs := fmt.Sprintf("%s-%d.0", p, n)
	c := pipeline.Spec{Project: "org/app", Branch: "main", Number: n, Patchset: ps,
		Ref: fmt.Sprintf("refs/changes/%02d/%d/%d", n%100, n, ps), Commit: "c0ffee"}
	return pipeline.Action{ID: "build/" + bs, Kind: pipeline.ActBuild, Pipeline: p, Queue: "q", Item: fmt.Sprintf("%s-%d", p, n),
		BuildSet: bs, Change: c, Changes: []pipeline.Spec{c},
		Commits: []pipeline.ProjectCommit{{Project: "org/app", Branch: "main", Commit: "5bec"}}, Priority: prio}
}

// fanout replaces the fake tracker's watches, whose channels hold 100
// events and panic when full (which happens when many goroutines are
// runnable and the watcher is not scheduled in time). A reactor performs
// every write on the tracker and hands the event to each watch, which
// buffers without bound. The fake runs reactors under its own lock, so
// events keep the order of the writes.
type fanout struct {
	mu   sync.Mutex
	subs map[*pump]string // watch -> namespace ("" for all)
}

func newFanout(t testing.TB, cs *fake.Clientset, started chan<- string) {
	f := &fanout{subs: map[*pump]string{}}
	tracker := cs.Tracker()
	react := k8stesting.ObjectReaction(tracker)
	cs.PrependReactor("*", "workflows", func(action k8stesting.Action) (bool, runtime.Object, error) {
		var typ watch.EventType
		var old runtime.Object
		switch action.GetVerb() {
		case "create":
			typ = watch.Added
		case "update", "patch":
			typ = watch.Modified
		case "delete":
			typ = watch.Deleted
			old, _ = tracker.Get(action.GetResource(), action.GetNamespace(), action.(k8stesting.DeleteAction).GetName())
		default:
			return false, nil, nil
		}
		handled, obj, err := react(action)
		if err != nil || !handled {
			return handled, obj, err
		}
		if typ == watch.Deleted {
			obj = old
		}
		if wf, ok := obj.(*wfv1.Workflow); ok {
			f.send(watch.Event{Type: typ, Object: wf.DeepCopy()}, wf.Namespace)
		}
		return handled, obj, err
	})
	cs.PrependWatchReactor("workflows", func(action k8stesting.Action) (bool, watch.Interface, error) {
		if wa, ok := action.(k8stesting.WatchAction); ok && wa.GetWatchRestrictions().Fields.String() == watchProbeSelector {
			return true, watch.NewEmptyWatch(), nil // the adapter's permission probe
		}
		p := newPump(f, action.GetNamespace())
		select {
		case started <- action.GetNamespace():
		default:
			t.Errorf("the informer of %q watches again and again", action.GetNamespace())
		}
		return true, p, nil
	})
}

func (f *fanout) send(ev watch.Event, ns string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, watched := range f.subs {
		if watched == "" || watched == ns {
			select {
			case p.in <- ev:
			case <-p.stop:
			}
		}
	}
}

// pump is a watch that buffers without bound.
type pump struct {
	f    *fanout
	in   chan watch.Event
	out  chan watch.Event
	stop chan struct{}
	once sync.Once
}

func newPump(f *fanout, ns string) *pump {
	p := &pump{f: f, in: make(chan watch.Event), out: make(chan watch.Event), stop: make(chan struct{})}
	f.mu.Lock()
	f.subs[p] = ns
	f.mu.Unlock()
	go func() {
		defer close(p.out)
		var queue []watch.Event
		for {
			var send chan watch.Event
			var head watch.Event
			if len(queue) > 0 {
				send, head = p.out, queue[0]
			}
			select {
			case ev := <-p.in:
				queue = append(queue, ev)
			case send <- head:
				queue = queue[1:]
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

func (p *pump) Stop() {
	p.once.Do(func() {
		close(p.stop)
		p.f.mu.Lock()
		delete(p.f.subs, p)
		p.f.mu.Unlock()
	})
}

func (p *pump) ResultChan() <-chan watch.Event { return p.out }
