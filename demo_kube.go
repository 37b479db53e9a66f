package main

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
)

// fakeArgo is the Argo API of the demo: the generated fake clientset, shared
// by the daemon's argo adapter and argolocal, made to behave like an API
// server where two controllers need it to:
//
//   - every write of a Workflow gets a new resourceVersion, and an update
//     that carries a stale one is refused with Conflict (argolocal re-reads
//     and retries, so a status write cannot undo the adapter's
//     spec.shutdown patch);
//   - a list says at which resourceVersion it was taken and a watch from
//     there replays the writes made since, so an informer loses nothing
//     between its list and its watch (the plain fake loses those writes);
//   - watches buffer without bound (the plain fake panics once 100 events
//     are unread) and honour label and field selectors.
//
// Only workflows get this treatment; nothing else is used by the demo.
type fakeArgo struct {
	*fake.Clientset

	mu      sync.Mutex
	version uint64
	history []versionedEvent // every write, oldest first
	watches map[*pump]bool
}

type versionedEvent struct {
	version uint64
	event   watch.Event
}

func newFakeArgo() *fakeArgo {
	f := &fakeArgo{Clientset: fake.NewSimpleClientset(), watches: map[*pump]bool{}}
	f.PrependReactor("*", "workflows", f.react)
	f.PrependWatchReactor("workflows", f.watch)
	return f
}

// react serves list and the writes; get falls through to the tracker.
func (f *fakeArgo) react(action k8stesting.Action) (bool, runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var (
		typ watch.EventType
		wf  *wfv1.Workflow
		err error
	)
	switch a := action.(type) {
	case k8stesting.ListActionImpl:
		list, err := f.Tracker().List(a.GetResource(), a.GetKind(), a.GetNamespace())
		if l, ok := list.(*wfv1.WorkflowList); ok {
			l.ResourceVersion = strconv.FormatUint(f.version, 10)
		}
		return true, list, err
	case k8stesting.CreateActionImpl:
		typ = watch.Added
		wf, err = f.create(a)
	case k8stesting.UpdateActionImpl:
		typ = watch.Modified
		wf, err = f.update(a)
	case k8stesting.PatchActionImpl:
		typ = watch.Modified
		wf, err = f.patch(a)
	case k8stesting.DeleteActionImpl:
		typ = watch.Deleted
		wf, err = f.delete(a)
	default:
		return false, nil, nil
	}
	if err != nil {
		return true, nil, err
	}
	f.publish(typ, wf)
	if typ == watch.Deleted {
		return true, nil, nil
	}
	return true, wf.DeepCopy(), nil
}

// next gives wf the next resourceVersion.
func (f *fakeArgo) next(wf *wfv1.Workflow) {
	f.version++
	wf.ResourceVersion = strconv.FormatUint(f.version, 10)
}

func (f *fakeArgo) create(a k8stesting.CreateActionImpl) (*wfv1.Workflow, error) {
	gvr, ns := a.GetResource(), a.GetNamespace()
	wf, ok := a.GetObject().(*wfv1.Workflow)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the demo's Argo API stores Workflows, not %T", a.GetObject()))
	}
	if wf.Name == "" {
		return nil, apierrors.NewBadRequest("the demo's Argo API needs metadata.name (generateName is not supported)")
	}
	if _, err := f.Tracker().Get(gvr, ns, wf.Name); err == nil {
		return nil, apierrors.NewAlreadyExists(gvr.GroupResource(), wf.Name)
	}
	wf = wf.DeepCopy()
	f.next(wf)
	wf.UID = types.UID(fmt.Sprintf("demo-%08d", f.version))
	wf.CreationTimestamp = metav1.Now()
	return wf, f.Tracker().Create(gvr, wf, ns)
}

func (f *fakeArgo) update(a k8stesting.UpdateActionImpl) (*wfv1.Workflow, error) {
	gvr, ns := a.GetResource(), a.GetNamespace()
	wf, ok := a.GetObject().(*wfv1.Workflow)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the demo's Argo API stores Workflows, not %T", a.GetObject()))
	}
	cur, err := f.get(gvr, ns, wf.Name)
	if err != nil {
		return nil, err
	}
	if wf.ResourceVersion != "" && wf.ResourceVersion != cur.ResourceVersion {
		return nil, apierrors.NewConflict(gvr.GroupResource(), wf.Name,
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	wf = wf.DeepCopy()
	f.next(wf)
	wf.UID, wf.CreationTimestamp = cur.UID, cur.CreationTimestamp
	return wf, f.Tracker().Update(gvr, wf, ns)
}

func (f *fakeArgo) patch(a k8stesting.PatchActionImpl) (*wfv1.Workflow, error) {
	_, patched, err := k8stesting.ObjectReaction(f.Tracker())(a)
	if err != nil {
		return nil, err
	}
	wf, ok := patched.(*wfv1.Workflow)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the demo's Argo API stores Workflows, not %T", patched))
	}
	wf = wf.DeepCopy()
	f.next(wf)
	return wf, f.Tracker().Update(a.GetResource(), wf, a.GetNamespace())
}

func (f *fakeArgo) delete(a k8stesting.DeleteActionImpl) (*wfv1.Workflow, error) {
	cur, err := f.get(a.GetResource(), a.GetNamespace(), a.GetName())
	if err != nil {
		return nil, err
	}
	if err := f.Tracker().Delete(a.GetResource(), a.GetNamespace(), a.GetName()); err != nil {
		return nil, err
	}
	f.next(cur)
	return cur, nil
}

func (f *fakeArgo) get(gvr schema.GroupVersionResource, ns, name string) (*wfv1.Workflow, error) {
	obj, err := f.Tracker().Get(gvr, ns, name)
	if err != nil {
		return nil, err
	}
	wf, ok := obj.(*wfv1.Workflow)
	if !ok {
		return nil, fmt.Errorf("demo Argo API: %s/%s is a %T, not a Workflow", ns, name, obj)
	}
	return wf.DeepCopy(), nil
}

// publish records a write and hands it to the watches; f.mu is held.
func (f *fakeArgo) publish(typ watch.EventType, wf *wfv1.Workflow) {
	ev := watch.Event{Type: typ, Object: wf.DeepCopy()}
	f.history = append(f.history, versionedEvent{f.version, ev})
	for p := range f.watches {
		p.offer(ev)
	}
}

// watch starts a watch; one with a resourceVersion first replays the
// writes made after it.
func (f *fakeArgo) watch(action k8stesting.Action) (bool, watch.Interface, error) {
	a, ok := action.(k8stesting.WatchActionImpl)
	if !ok {
		return false, nil, nil
	}
	r := a.GetWatchRestrictions()
	p := newPump(f, a.GetNamespace(), r.Labels, r.Fields)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.ResourceVersion != "" && r.ResourceVersion != "0" {
		from, err := strconv.ParseUint(r.ResourceVersion, 10, 64)
		if err != nil {
			return true, nil, apierrors.NewBadRequest(fmt.Sprintf("resourceVersion %q is not a number", r.ResourceVersion))
		}
		for _, h := range f.history {
			if h.version > from {
				p.offer(h.event)
			}
		}
	}
	f.watches[p] = true
	go p.run()
	return true, p, nil
}

func (f *fakeArgo) unwatch(p *pump) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.watches, p)
}

// pump is a watch that buffers without bound and passes on only the
// events its namespace and selectors match.
type pump struct {
	f      *fakeArgo
	ns     string
	labels labels.Selector
	fields fields.Selector

	mu    sync.Mutex
	queue []watch.Event
	wake  chan struct{}
	out   chan watch.Event
	stop  chan struct{}
	once  sync.Once
}

func newPump(f *fakeArgo, ns string, l labels.Selector, fs fields.Selector) *pump {
	if l == nil {
		l = labels.Everything()
	}
	if fs == nil {
		fs = fields.Everything()
	}
	return &pump{f: f, ns: ns, labels: l, fields: fs,
		wake: make(chan struct{}, 1), out: make(chan watch.Event), stop: make(chan struct{})}
}

// offer queues ev if the watch wants it; it never blocks.
func (p *pump) offer(ev watch.Event) {
	wf := ev.Object.(*wfv1.Workflow)
	if p.ns != "" && wf.Namespace != p.ns {
		return
	}
	if !p.labels.Matches(labels.Set(wf.Labels)) ||
		!p.fields.Matches(fields.Set{"metadata.name": wf.Name, "metadata.namespace": wf.Namespace}) {
		return
	}
	p.mu.Lock()
	p.queue = append(p.queue, watch.Event{Type: ev.Type, Object: wf.DeepCopy()})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pump) run() {
	defer close(p.out)
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.mu.Unlock()
			select {
			case <-p.wake:
				continue
			case <-p.stop:
				return
			}
		}
		ev := p.queue[0]
		p.queue[0] = watch.Event{}
		p.queue = p.queue[1:]
		p.mu.Unlock()
		select {
		case p.out <- ev:
		case <-p.stop:
			return
		}
	}
}

// Stop ends the watch.
func (p *pump) Stop() {
	p.once.Do(func() {
		p.f.unwatch(p)
		close(p.stop)
	})
}

// ResultChan is where the events arrive.
func (p *pump) ResultChan() <-chan watch.Event { return p.out }
