package argolocal

// This file walks the template tree: one node per template invocation,
// steps in groups, dag tasks by their dependencies.

import (
	"context"
	"fmt"
	"strings"
	"sync"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
)

// A call is one invocation of a template, which becomes one node.
type call struct {
	name, display, template string
	args                    wfv1.Arguments // substituted by the caller
	boundary                string
	parents                 []string // nodes that get this one as child
	err                     error    // the caller could not prepare it: Error
}

// A result is how a node ended.
type result struct {
	id    string
	phase wfv1.NodePhase
	msg   string
}

func (e *execution) runTemplate(ctx context.Context, cl call) result {
	tmpl := e.templates[cl.template]
	typ := wfv1.NodeTypePod
	switch {
	case tmpl == nil:
	case len(tmpl.Steps) > 0:
		typ = wfv1.NodeTypeSteps
	case tmpl.DAG != nil:
		typ = wfv1.NodeTypeDAG
	}
	id := e.startNode(cl.name, cl.display, typ, cl.template, cl.boundary, cl.parents)
	phase, msg := e.runNode(ctx, id, cl, tmpl)
	e.endNode(id, phase, msg)
	return result{id: id, phase: phase, msg: msg}
}

func (e *execution) runNode(ctx context.Context, id string, cl call, tmpl *wfv1.Template) (wfv1.NodePhase, string) {
	switch {
	case cl.err != nil:
		return wfv1.NodeError, cl.err.Error()
	case tmpl == nil:
		return wfv1.NodeError, fmt.Sprintf("template %q not found", cl.template)
	case ctx.Err() != nil:
		return wfv1.NodeFailed, causeMessage(ctx)
	}
	if len(tmpl.Inputs.Artifacts) > 0 {
		return wfv1.NodeError, unsupported("input artifacts").Error()
	}
	vars, err := e.scope(tmpl, cl.args)
	if err != nil {
		return wfv1.NodeError, err.Error()
	}
	switch {
	case tmpl.Container != nil || tmpl.Script != nil:
		return e.runPod(ctx, id, tmpl, vars)
	case len(tmpl.Steps) > 0:
		return e.runSteps(ctx, id, cl.name, tmpl, vars)
	case tmpl.DAG != nil:
		return e.runDAG(ctx, id, cl.name, tmpl, vars)
	}
	kind := "a template without container, script, steps or dag"
	for _, k := range []struct {
		used bool
		name string
	}{
		{tmpl.Resource != nil, "resource templates"}, {tmpl.Suspend != nil, "suspend templates"},
		{tmpl.HTTP != nil, "http templates"}, {tmpl.Data != nil, "data templates"},
		{tmpl.Plugin != nil, "plugin templates"}, {tmpl.ContainerSet != nil, "containerSet templates"},
	} {
		if k.used {
			kind = k.name
		}
	}
	return wfv1.NodeError, unsupported(kind).Error()
}

// tolerated reports whether a node that ended in phase lets its siblings
// and dependents go on.
func tolerated(phase wfv1.NodePhase, co *wfv1.ContinueOn) bool {
	switch phase {
	case wfv1.NodeSucceeded:
		return true
	case wfv1.NodeFailed:
		return co != nil && co.Failed
	case wfv1.NodeError:
		return co != nil && co.Error
	}
	return false
}

func (e *execution) runSteps(ctx context.Context, id, name string, tmpl *wfv1.Template, vars map[string]string) (wfv1.NodePhase, string) {
	for i, group := range tmpl.Steps {
		if ctx.Err() != nil {
			return wfv1.NodeFailed, causeMessage(ctx)
		}
		gname := fmt.Sprintf("%s[%d]", name, i)
		gid := e.startNode(gname, fmt.Sprintf("[%d]", i), wfv1.NodeTypeStepGroup, tmpl.Name, id, []string{id})
		results := make([]result, len(group.Steps))
		var wg sync.WaitGroup
		for j, st := range group.Steps {
			cl := call{name: gname + "." + st.Name, display: st.Name, template: st.Template,
				boundary: id, parents: []string{gid}}
			cl.args, cl.err = substituteArgs(st.Arguments, vars)
			if err := rejectFirst(
				feature{st.When != "", "when"}, feature{len(st.WithItems) > 0, "withItems"},
				feature{st.WithParam != "", "withParam"}, feature{st.WithSequence != nil, "withSequence"},
				feature{st.TemplateRef != nil, "templateRef"}, feature{st.Inline != nil, "inline templates"},
				feature{st.OnExit != "", "onExit"}, feature{len(st.Hooks) > 0, "hooks"},
			); err != nil {
				cl.err = err
			}
			wg.Go(func() { results[j] = e.runTemplate(ctx, cl) })
		}
		wg.Wait()
		phase, msg := wfv1.NodeSucceeded, ""
		for j, r := range results {
			if !tolerated(r.phase, group.Steps[j].ContinueOn) {
				phase, msg = r.phase, r.msg
				break
			}
		}
		e.endNode(gid, phase, msg)
		if phase != wfv1.NodeSucceeded {
			return phase, msg
		}
	}
	return wfv1.NodeSucceeded, ""
}

func (e *execution) runDAG(ctx context.Context, id, name string, tmpl *wfv1.Template, vars map[string]string) (wfv1.NodePhase, string) {
	dag := tmpl.DAG
	if dag.Target != "" {
		return wfv1.NodeError, unsupported("dag.target").Error()
	}
	tasks := map[string]*wfv1.DAGTask{}
	for i := range dag.Tasks {
		t := &dag.Tasks[i]
		if tasks[t.Name] != nil {
			return wfv1.NodeError, fmt.Sprintf("task %q is defined twice", t.Name)
		}
		tasks[t.Name] = t
	}
	deps := map[string][]string{}
	for _, t := range dag.Tasks {
		d, err := taskDependencies(&t)
		if err != nil {
			return wfv1.NodeError, err.Error()
		}
		for _, x := range d {
			if tasks[x] == nil {
				return wfv1.NodeError, fmt.Sprintf("task %q depends on unknown task %q", t.Name, x)
			}
		}
		deps[t.Name] = d
	}
	if !acyclic(dag.Tasks, deps) {
		return wfv1.NodeError, "dag has a dependency cycle"
	}

	failFast := dag.FailFast == nil || *dag.FailFast
	type done struct {
		name string
		r    result
	}
	finished := map[string]result{}
	started := map[string]bool{}
	ch := make(chan done)
	running := 0
	var failure *result
	ready := func(name string) bool {
		for _, d := range deps[name] {
			r, ok := finished[d]
			if !ok || !tolerated(r.phase, tasks[d].ContinueOn) {
				return false
			}
		}
		return true
	}
	for {
		for _, t := range dag.Tasks {
			if ctx.Err() != nil || (failure != nil && failFast) || started[t.Name] || !ready(t.Name) {
				continue
			}
			started[t.Name] = true
			running++
			parents := []string{id}
			if len(deps[t.Name]) > 0 {
				parents = nil
				for _, d := range deps[t.Name] {
					parents = append(parents, finished[d].id)
				}
			}
			cl := call{name: name + "." + t.Name, display: t.Name, template: t.Template,
				boundary: id, parents: parents}
			cl.args, cl.err = substituteArgs(t.Arguments, vars)
			if err := rejectFirst(
				feature{t.When != "", "when"}, feature{len(t.WithItems) > 0, "withItems"},
				feature{t.WithParam != "", "withParam"}, feature{t.WithSequence != nil, "withSequence"},
				feature{t.TemplateRef != nil, "templateRef"}, feature{t.Inline != nil, "inline templates"},
				feature{t.OnExit != "", "onExit"}, feature{len(t.Hooks) > 0, "hooks"},
			); err != nil {
				cl.err = err
			}
			go func() { ch <- done{t.Name, e.runTemplate(ctx, cl)} }()
		}
		if running == 0 {
			break
		}
		d := <-ch
		running--
		finished[d.name] = d.r
		if failure == nil && !tolerated(d.r.phase, tasks[d.name].ContinueOn) {
			failure = &d.r
		}
	}
	switch {
	case failure != nil:
		return failure.phase, failure.msg
	case len(finished) < len(dag.Tasks):
		return wfv1.NodeFailed, causeMessage(ctx)
	}
	return wfv1.NodeSucceeded, ""
}

// taskDependencies returns the names a task waits for: its dependencies,
// or its depends when that is a conjunction like "a && b.Succeeded".
func taskDependencies(t *wfv1.DAGTask) ([]string, error) {
	if t.Depends == "" {
		return t.Dependencies, nil
	}
	if len(t.Dependencies) > 0 {
		return nil, fmt.Errorf("task %q has both dependencies and depends", t.Name)
	}
	var out []string
	for part := range strings.SplitSeq(t.Depends, "&&") {
		p := strings.TrimSuffix(strings.TrimSpace(part), ".Succeeded")
		if p == "" || strings.ContainsAny(p, "|!()<>=. \t") {
			return nil, unsupported(fmt.Sprintf("depends %q (only the form \"a && b.Succeeded\")", t.Depends))
		}
		out = append(out, p)
	}
	return out, nil
}

// acyclic reports whether every task can be reached by following deps.
func acyclic(tasks []wfv1.DAGTask, deps map[string][]string) bool {
	placed := map[string]bool{}
	for progress := true; progress; {
		progress = false
		for _, t := range tasks {
			if placed[t.Name] {
				continue
			}
			ok := true
			for _, d := range deps[t.Name] {
				ok = ok && placed[d]
			}
			if ok {
				placed[t.Name], progress = true, true
			}
		}
	}
	return len(placed) == len(tasks)
}

// A feature is something a Workflow may use that argolocal rejects.
type feature struct {
	used bool
	name string
}

func rejectFirst(fs ...feature) error {
	for _, f := range fs {
		if f.used {
			return unsupported(f.name)
		}
	}
	return nil
}
