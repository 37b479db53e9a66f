package argolocal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"
)

const ns = "ci-demo"

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return fakeTimerHandle{c, t}
	}
	c.timers = append(c.timers, t)
	return fakeTimerHandle{c, t}
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.c <- c.now
	}
	c.timers = kept
}

type fakeTimerHandle struct {
	c *fakeClock
	t *fakeTimer
}

func (h fakeTimerHandle) C() <-chan time.Time { return h.t.c }

func (h fakeTimerHandle) Stop() bool {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	for i, t := range h.c.timers {
		if t == h.t {
			h.c.timers = append(h.c.timers[:i], h.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// fakeAPI is the generated fake clientset, plus what it lacks to behave
// like an API server for a controller: resourceVersions that an Update must
// match (Conflict otherwise) and a signal when a watch has started, since
// the fake loses the writes made between a list and its watch.
type fakeAPI struct {
	*fake.Clientset
	watching chan struct{}
}

func newFakeAPI(t *testing.T, objs ...runtime.Object) *fakeAPI {
	t.Helper()
	f := &fakeAPI{Clientset: fake.NewSimpleClientset(objs...), watching: make(chan struct{})}
	var once sync.Once
	f.PrependWatchReactor("workflows", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := f.Tracker().Watch(a.GetResource(), a.GetNamespace())
		once.Do(func() { close(f.watching) })
		return true, w, err
	})
	var mu sync.Mutex
	version := 1
	f.PrependReactor("update", "workflows", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		obj := a.(k8stesting.UpdateAction).GetObject().(*wfv1.Workflow).DeepCopy()
		cur, err := f.Tracker().Get(a.GetResource(), a.GetNamespace(), obj.Name)
		if err != nil {
			return true, nil, err
		}
		if obj.ResourceVersion != cur.(*wfv1.Workflow).ResourceVersion {
			return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), obj.Name,
				errors.New("the object has been modified"))
		}
		version++
		obj.ResourceVersion = strconv.Itoa(version)
		return true, obj, f.Tracker().Update(a.GetResource(), obj, a.GetNamespace())
	})
	return f
}

// waitWatching waits until the controller watches, after which a write
// reaches it.
func (f *fakeAPI) waitWatching(t *testing.T) {
	t.Helper()
	select {
	case <-f.watching:
	case <-time.After(30 * time.Second):
		t.Fatal("the controller never started watching")
	}
}

// start runs a controller on client until the test ends, and returns a
// function that stops it and waits for Run to return.
func start(t *testing.T, client versioned.Interface, cfg Config) (*Controller, func()) {
	t.Helper()
	cfg.Client = client
	if cfg.WorkDir == "" {
		cfg.WorkDir = t.TempDir()
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// workflow parses a Workflow written in YAML into namespace ns.
func workflow(t *testing.T, doc string) *wfv1.Workflow {
	t.Helper()
	var wf wfv1.Workflow
	if err := yaml.UnmarshalStrict([]byte(doc), &wf); err != nil {
		t.Fatalf("bad workflow YAML: %v", err)
	}
	wf.Namespace = ns
	return &wf
}

func create(t *testing.T, client versioned.Interface, wf *wfv1.Workflow) {
	t.Helper()
	if _, err := client.ArgoprojV1alpha1().Workflows(wf.Namespace).Create(context.Background(), wf, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls the Workflow until cond holds and returns it.
func waitFor(t *testing.T, client versioned.Interface, name string, what string, cond func(*wfv1.Workflow) bool) *wfv1.Workflow {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var wf *wfv1.Workflow
	for time.Now().Before(deadline) {
		var err error
		wf, err = client.ArgoprojV1alpha1().Workflows(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && cond(wf) {
			return wf
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("workflow %s never got %s; last status: %+v", name, what, wf.Status)
	return nil
}

func waitDone(t *testing.T, client versioned.Interface, name string) *wfv1.Workflow {
	t.Helper()
	return waitFor(t, client, name, "completed", func(wf *wfv1.Workflow) bool { return wf.Status.Phase.Completed() })
}

// waitFile waits for a file a process writes and returns its content.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
	return ""
}

// modify changes a Workflow's spec the way a client does: read, change,
// Update, again on Conflict.
func modify(t *testing.T, client versioned.Interface, name string, change func(*wfv1.Workflow)) {
	t.Helper()
	api := client.ArgoprojV1alpha1().Workflows(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		wf, err := api.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(wf)
		_, err = api.Update(context.Background(), wf, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// node returns the node of wf with display name display.
func node(t *testing.T, wf *wfv1.Workflow, display string) wfv1.NodeStatus {
	t.Helper()
	for _, n := range wf.Status.Nodes {
		if n.DisplayName == display {
			return n
		}
	}
	t.Fatalf("no node %q in %v", display, wf.Status.Nodes)
	return wfv1.NodeStatus{}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
