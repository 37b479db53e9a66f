package argo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/informers/externalversions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// nsWatch is the informer of one namespace ("" for all of them), listing
// and watching only Workflows labelled seakeeper.io/buildset.
type nsWatch struct {
	informer cache.SharedIndexInformer
}

const byBuildSet = "buildset"

// Start starts the informers and waits for their caches, then delivers
// results until ctx ends. Call it once, before anything else.
func (a *Adapter) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.ctx != nil {
		a.mu.Unlock()
		return errors.New("argo: Start called twice")
	}
	a.ctx = ctx
	a.mu.Unlock()
	go a.out.run(ctx, a.results) // the informers stop with ctx too
	if !a.opts.Namespaced {
		return a.ensureWatch(ctx, metav1.NamespaceAll)
	}
	for _, ns := range a.opts.Namespaces {
		if err := a.ensureWatch(ctx, ns); err != nil {
			return err
		}
	}
	return nil
}

// ensureWatch starts the informer of ns (or of all namespaces, in the
// cluster-wide mode) and waits until it has listed.
// watchProbeSelector narrows the permission probe's watch to nothing; it
// also tells the probe apart from the informer's watches in tests.
const watchProbeSelector = "metadata.name=seakeeper-watch-probe"

func (a *Adapter) ensureWatch(ctx context.Context, ns string) error {
	if !a.opts.Namespaced {
		ns = metav1.NamespaceAll
	}
	a.watchMu.Lock()
	defer a.watchMu.Unlock()
	a.mu.Lock()
	w, root := a.watches[ns], a.ctx
	a.mu.Unlock()
	if w == nil {
		if root.Err() != nil {
			return root.Err()
		}
		// The informer retries a failing list for ever; find a refusal
		// (RBAC) now, to report it.
		_, err := a.opts.Client.ArgoprojV1alpha1().Workflows(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelBuildSet, Limit: 1})
		if err != nil && !transient(err) {
			return permanent{fmt.Errorf("cannot list workflows in namespace %q: %w", ns, err)}
		}
		// Nor does it report a refused watch: it re-lists with a growing
		// backoff and results arrive late, silently. Probe the watch too.
		probe := int64(1)
		pw, err := a.opts.Client.ArgoprojV1alpha1().Workflows(ns).Watch(ctx, metav1.ListOptions{
			LabelSelector: LabelBuildSet, FieldSelector: watchProbeSelector, TimeoutSeconds: &probe})
		if err != nil && !transient(err) {
			return permanent{fmt.Errorf("cannot watch workflows in namespace %q: %w", ns, err)}
		}
		if err == nil {
			pw.Stop()
		}
		f := externalversions.NewSharedInformerFactoryWithOptions(a.opts.Client, a.opts.Resync,
			externalversions.WithNamespace(ns),
			externalversions.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelBuildSet }))
		inf := f.Argoproj().V1alpha1().Workflows().Informer()
		if err := inf.AddIndexers(cache.Indexers{byBuildSet: indexBuildSet}); err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    a.onUpsert,
			UpdateFunc: func(_, obj any) { a.onUpsert(obj) },
			DeleteFunc: a.onDelete,
		}); err != nil {
			return err
		}
		f.Start(root.Done())
		w = &nsWatch{informer: inf}
		a.mu.Lock()
		a.watches[ns] = w
		a.mu.Unlock()
	}
	if !cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
		return fmt.Errorf("argo: the informer of namespace %q did not sync: %w", ns, context.Cause(ctx))
	}
	return nil
}

// buildSetOf returns the buildset of a Workflow made by Seakeeper. The
// label selector is not trusted (fake clients ignore it on watches), so the
// label and the raw annotation must agree.
func buildSetOf(obj any) (*wfv1.Workflow, string, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	wf, ok := obj.(*wfv1.Workflow)
	if !ok {
		return nil, "", false
	}
	bs, ok := wf.Annotations[LabelBuildSet]
	if !ok || bs == "" || wf.Labels[LabelBuildSet] != LabelValue(bs) {
		return nil, "", false
	}
	return wf, bs, true
}

func indexBuildSet(obj any) ([]string, error) {
	if _, bs, ok := buildSetOf(obj); ok {
		return []string{bs}, nil
	}
	return nil, nil
}

func (a *Adapter) onUpsert(obj any) {
	wf, bs, ok := buildSetOf(obj)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entries[bs]
	if e == nil || e.state < stCreating || e.ns != wf.Namespace || e.name != wf.Name || e.uid != "" && e.uid != wf.UID {
		return
	}
	e.seen = true
	a.observe(e, wf)
}

func (a *Adapter) onDelete(obj any) {
	wf, bs, ok := buildSetOf(obj)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entries[bs]
	if e == nil || e.state != stActive || e.ns != wf.Namespace || e.name != wf.Name || e.uid != wf.UID {
		return
	}
	if !e.cancelled {
		a.out.push(pipeline.BuildResult{BuildSet: bs, Phase: pipeline.PhaseError, URL: a.url(wf, ""),
			Message: fmt.Sprintf("workflow %s/%s was deleted before it finished", wf.Namespace, wf.Name)})
	}
	a.forget(e)
}

// observe turns the state of e's Workflow into a result when it says
// something new, and lets go of e once the Workflow finished. a.mu is held.
func (a *Adapter) observe(e *entry, wf *wfv1.Workflow) {
	r := a.result(e.bs, wf)
	if e.cancelled {
		if r.Phase.Terminal() {
			a.forget(e)
		}
		return
	}
	if key := resultKey(r); key != e.last {
		e.last = key
		a.out.push(r)
	}
	if r.Phase.Terminal() {
		a.forget(e)
	}
}

func resultKey(r pipeline.BuildResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%s", r.Phase, r.Message, r.URL)
	for _, n := range r.Nodes {
		fmt.Fprintf(&b, "\x00%s\x00%s\x00%s", n.Name, n.Phase, n.Message)
	}
	return b.String()
}

// cached returns the informer's copy of a Workflow, or nil. Do not modify.
func (a *Adapter) cached(ns, name string) *wfv1.Workflow {
	for _, w := range a.watches {
		if obj, ok, _ := w.informer.GetIndexer().GetByKey(ns + "/" + name); ok {
			if wf, ok := obj.(*wfv1.Workflow); ok {
				return wf
			}
		}
	}
	return nil
}

// findCached returns the informer's copy of the Workflow of buildset bs.
func (a *Adapter) findCached(bs string) *wfv1.Workflow {
	for _, w := range a.watches {
		objs, _ := w.informer.GetIndexer().ByIndex(byBuildSet, bs)
		for _, obj := range objs {
			if wf, _, ok := buildSetOf(obj); ok {
				return wf
			}
		}
	}
	return nil
}

// result reads the verdict from status.phase and status.message; nodes
// only add detail.
func (a *Adapter) result(bs string, wf *wfv1.Workflow) pipeline.BuildResult {
	st := &wf.Status
	r := pipeline.BuildResult{
		BuildSet: bs, Phase: phaseOf(st.Phase), Message: st.Message, URL: a.url(wf, ""),
		StartedAt: st.StartedAt.Time, FinishedAt: st.FinishedAt.Time,
	}
	for _, n := range failedPods(st) {
		r.Nodes = append(r.Nodes, pipeline.NodeResult{Name: nodeName(n), Phase: pipeline.Phase(n.Phase), URL: a.url(wf, n.ID), Message: n.Message})
	}
	return r
}

func phaseOf(p wfv1.WorkflowPhase) pipeline.Phase {
	switch p {
	case wfv1.WorkflowRunning:
		return pipeline.PhaseRunning
	case wfv1.WorkflowSucceeded:
		return pipeline.PhaseSucceeded
	case wfv1.WorkflowFailed:
		return pipeline.PhaseFailed
	case wfv1.WorkflowError:
		return pipeline.PhaseError
	}
	return pipeline.PhasePending
}

// url links the Argo UI to a Workflow, or to one of its nodes.
func (a *Adapter) url(wf *wfv1.Workflow, nodeID string) string {
	if a.opts.ArgoURL == "" {
		return ""
	}
	u := fmt.Sprintf("%s/workflows/%s/%s?uid=%s", strings.TrimRight(a.opts.ArgoURL, "/"),
		url.PathEscape(wf.Namespace), url.PathEscape(wf.Name), url.QueryEscape(string(wf.UID)))
	if nodeID != "" {
		u += "&nodeId=" + url.QueryEscape(nodeID)
	}
	return u
}

func nodeName(n wfv1.NodeStatus) string {
	if n.DisplayName != "" {
		return n.DisplayName
	}
	return n.Name
}

func failed(p wfv1.NodePhase) bool { return p == wfv1.NodeFailed || p == wfv1.NodeError }

// failedPods returns the pods that failed for good, in the order they
// started: a failed attempt under a retry node counts only when the retry
// node failed too, and then only its last attempt.
func failedPods(st *wfv1.WorkflowStatus) []wfv1.NodeStatus {
	nodes := st.Nodes
	if len(nodes) == 0 && st.CompressedNodes != "" {
		nodes = decompressNodes(st.CompressedNodes)
	}
	parent := map[string]wfv1.NodeStatus{}
	for _, n := range nodes {
		for _, c := range n.Children {
			parent[c] = n
		}
	}
	var out []wfv1.NodeStatus
	for _, n := range nodes {
		if n.Type != wfv1.NodeTypePod || !failed(n.Phase) {
			continue
		}
		if p, ok := parent[n.ID]; ok && p.Type == wfv1.NodeTypeRetry &&
			(!failed(p.Phase) || len(p.Children) > 0 && p.Children[len(p.Children)-1] != n.ID) {
			continue
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(&out[j].StartedAt) {
			return out[i].StartedAt.Before(&out[j].StartedAt)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// decompressNodes reads status.compressedNodes (base64 of gzipped JSON),
// which the controller writes instead of nodes when they are large. An
// unreadable value gives no nodes: they are detail, not the verdict.
func decompressNodes(s string) wfv1.Nodes {
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil
	}
	var nodes wfv1.Nodes
	if json.Unmarshal(raw, &nodes) != nil {
		return nil
	}
	return nodes
}

// outbox queues results without ever blocking the producer (an informer
// handler) and hands them on in order.
type outbox struct {
	mu     sync.Mutex
	items  []pipeline.BuildResult
	notify chan struct{}
}

func newOutbox() *outbox { return &outbox{notify: make(chan struct{}, 1)} }

func (o *outbox) push(r pipeline.BuildResult) {
	o.mu.Lock()
	o.items = append(o.items, r)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// run delivers results to out until ctx ends, then closes out.
func (o *outbox) run(ctx context.Context, out chan<- pipeline.BuildResult) {
	defer close(out)
	for {
		o.mu.Lock()
		if len(o.items) == 0 {
			o.mu.Unlock()
			select {
			case <-o.notify:
				continue
			case <-ctx.Done():
				return
			}
		}
		r := o.items[0]
		o.items[0] = pipeline.BuildResult{}
		o.items = o.items[1:]
		o.mu.Unlock()
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
	}
}
