package argo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// terminatePatch stops a Workflow the way `argo terminate` does.
var terminatePatch = []byte(`{"spec":{"shutdown":"Terminate"}}`)

// Cancel stops the workflow of buildset bs. A submission still waiting
// for a slot is just dropped. A running Workflow gets the merge patch
// spec.shutdown=Terminate, and is deleted if it has not finished
// CancelGrace later. No result is emitted for a cancelled buildset, and a
// later Submit of it does nothing. Cancel returns once the patch was
// accepted (transient errors are retried until ctx ends); an error means
// it could not be sent, and the deletion backstop is armed anyway.
func (a *Adapter) Cancel(ctx context.Context, bs string) error {
	a.mu.Lock()
	if a.ctx == nil {
		a.mu.Unlock()
		return errors.New("argo: Cancel before Start")
	}
	a.tomb(bs)
	e := a.entries[bs]
	if e == nil {
		wf := a.findCached(bs)
		if wf == nil || phaseOf(wf.Status.Phase).Terminal() {
			a.mu.Unlock()
			return nil
		}
		// Running, but not ours yet (Adopt was not called): take it on to
		// stop it.
		e = &entry{bs: bs, state: stActive, ns: wf.Namespace, name: wf.Name, uid: wf.UID, seen: true, slot: true}
		a.slots.take()
		a.entries[bs] = e
	}
	if e.cancelled {
		a.mu.Unlock()
		return nil
	}
	e.cancelled = true
	if e.state != stActive {
		if e.state < stCreating {
			e.stop() // Submit drops it
		}
		// A Workflow being created is terminated once it exists.
		a.mu.Unlock()
		return nil
	}
	a.mu.Unlock()
	return a.terminate(ctx, e)
}

// terminate patches e's Workflow to stop and arms the deletion backstop.
func (a *Adapter) terminate(ctx context.Context, e *entry) error {
	a.mu.Lock()
	ns, name := e.ns, e.name
	a.mu.Unlock()
	wfs := a.opts.Client.ArgoprojV1alpha1().Workflows(ns)
	err := a.retry(ctx, "terminate workflow", func(ctx context.Context) error {
		_, err := wfs.Patch(ctx, name, types.MergePatchType, terminatePatch, metav1.PatchOptions{})
		return err
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	if apierrors.IsNotFound(err) {
		a.forget(e)
		return nil
	}
	if a.entries[e.bs] == e && e.backstop == nil {
		e.backstop = a.clock.AfterFunc(a.opts.CancelGrace, func() { a.backstopDelete(e) })
	}
	if err != nil {
		a.log.Error("cannot terminate workflow", "buildset", e.bs, "workflow", ns+"/"+name, "err", err)
		return fmt.Errorf("argo: terminating workflow %s/%s: %w", ns, name, err)
	}
	a.log.Info("terminating workflow", "buildset", e.bs, "workflow", ns+"/"+name)
	return nil
}

// backstopDelete deletes a cancelled Workflow that did not stop in time.
func (a *Adapter) backstopDelete(e *entry) {
	a.mu.Lock()
	if a.entries[e.bs] != e {
		a.mu.Unlock()
		return
	}
	ns, name, uid, ctx := e.ns, e.name, e.uid, a.ctx
	e.backstop = nil
	a.mu.Unlock()
	var pre *metav1.Preconditions
	if uid != "" {
		pre = &metav1.Preconditions{UID: &uid}
	}
	wfs := a.opts.Client.ArgoprojV1alpha1().Workflows(ns)
	err := a.retry(ctx, "delete workflow", func(ctx context.Context) error {
		err := wfs.Delete(ctx, name, metav1.DeleteOptions{Preconditions: pre})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) { // gone, or another incarnation
			return nil
		}
		return err
	})
	if err != nil {
		a.log.Error("cannot delete workflow", "buildset", e.bs, "workflow", ns+"/"+name, "err", err)
		return
	}
	a.log.Warn("deleted workflow that did not stop after cancel", "buildset", e.bs, "workflow", ns+"/"+name, "grace", a.opts.CancelGrace)
	a.mu.Lock()
	a.forget(e)
	a.mu.Unlock()
}

// AdoptResult says what Adopt found.
type AdoptResult struct {
	// Adopted are wanted buildsets whose Workflow was found; their state
	// is emitted as results (a finished one once, with its verdict).
	Adopted []string
	// Cancelled are unwanted buildsets whose Workflow was still running.
	Cancelled []string
	// Missing are wanted buildsets without a Workflow: submit them again.
	Missing []string
}

// Adopt takes on, after a restart, the Workflows labelled by Seakeeper in
// the namespaces watched: the wanted buildsets are watched again (running
// ones hold a slot, even past the cap), the others are cancelled if still
// running. Finished unwanted Workflows are left to their TTL.
func (a *Adapter) Adopt(ctx context.Context, wanted map[string]bool) (AdoptResult, error) {
	var res AdoptResult
	a.mu.Lock()
	if a.ctx == nil {
		a.mu.Unlock()
		return res, errors.New("argo: Adopt before Start")
	}
	var all []*wfv1.Workflow
	for _, w := range a.watches {
		for _, obj := range w.informer.GetIndexer().List() {
			if wf, _, ok := buildSetOf(obj); ok {
				all = append(all, wf)
			}
		}
	}
	found := map[string]bool{}
	var orphans []*entry
	for _, wf := range all {
		_, bs, _ := buildSetOf(wf)
		if found[bs] {
			continue
		}
		found[bs] = true
		running := !phaseOf(wf.Status.Phase).Terminal()
		switch {
		case a.entries[bs] != nil:
		case wanted[bs]:
			res.Adopted = append(res.Adopted, bs)
			e := &entry{bs: bs, state: stActive, ns: wf.Namespace, name: wf.Name, uid: wf.UID, seen: true}
			if running {
				e.slot = true
				a.slots.take()
			}
			a.entries[bs] = e
			a.observe(e, wf)
		case running:
			res.Cancelled = append(res.Cancelled, bs)
			e := &entry{bs: bs, state: stActive, ns: wf.Namespace, name: wf.Name, uid: wf.UID, seen: true, slot: true, cancelled: true}
			a.slots.take()
			a.entries[bs] = e
			a.tomb(bs)
			orphans = append(orphans, e)
		}
	}
	a.mu.Unlock()
	for bs, w := range wanted {
		if w && !found[bs] {
			res.Missing = append(res.Missing, bs)
		}
	}
	var errs []error
	for _, e := range orphans {
		if err := a.terminate(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	slices.Sort(res.Adopted)
	slices.Sort(res.Cancelled)
	slices.Sort(res.Missing)
	return res, errors.Join(errs...)
}

// nsObject is a namespace Seakeeper creates for a project.
func nsObject(ns, project string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        ns,
		Labels:      map[string]string{LabelManaged: "true", LabelProject: LabelValue(project)},
		Annotations: map[string]string{LabelProject: project},
	}}
}
