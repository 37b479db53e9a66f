package argolocal

// This file holds what turns a Workflow into something to run: the
// workflowTemplateRef merge, input parameters and {{...}} substitution.

import (
	"context"
	"fmt"
	"maps"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// effectiveSpec returns the Workflow's spec, merged over the spec of the
// WorkflowTemplate or ClusterWorkflowTemplate it refers to.
func (c *Controller) effectiveSpec(ctx context.Context, wf *wfv1.Workflow) (*wfv1.WorkflowSpec, error) {
	own := wf.Spec.DeepCopy()
	ref := own.WorkflowTemplateRef
	if ref == nil {
		return own, nil
	}
	api := c.cfg.Client.ArgoprojV1alpha1()
	var base *wfv1.WorkflowSpec
	if ref.ClusterScope {
		t, err := api.ClusterWorkflowTemplates().Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("workflowTemplateRef: %w", err)
		}
		base = t.Spec.DeepCopy()
	} else {
		t, err := api.WorkflowTemplates(wf.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("workflowTemplateRef: %w", err)
		}
		base = t.Spec.DeepCopy()
	}
	if base.WorkflowTemplateRef != nil {
		return nil, unsupported("a workflowTemplateRef inside a WorkflowTemplate")
	}

	merged := base
	if own.Entrypoint != "" {
		merged.Entrypoint = own.Entrypoint
	}
	for _, t := range own.Templates {
		merged.Templates = replaceByName(merged.Templates, t, func(t wfv1.Template) string { return t.Name })
	}
	for _, p := range own.Arguments.Parameters {
		merged.Arguments.Parameters = replaceByName(merged.Arguments.Parameters, p,
			func(p wfv1.Parameter) string { return p.Name })
	}
	if own.ActiveDeadlineSeconds != nil {
		merged.ActiveDeadlineSeconds = own.ActiveDeadlineSeconds
	}
	if own.Parallelism != nil {
		merged.Parallelism = own.Parallelism
	}
	if own.OnExit != "" {
		merged.OnExit = own.OnExit
	}
	merged.Shutdown = own.Shutdown
	merged.WorkflowTemplateRef = nil
	return merged, nil
}

// replaceByName replaces the element of list named like x, or appends x.
func replaceByName[T any](list []T, x T, name func(T) string) []T {
	for i := range list {
		if name(list[i]) == name(x) {
			list[i] = x
			return list
		}
	}
	return append(list, x)
}

// scope returns the substitutions inside one invocation of tmpl: the
// workflow's and the template's inputs, given args from the caller (which
// the caller has substituted already).
func (e *execution) scope(tmpl *wfv1.Template, args wfv1.Arguments) (map[string]string, error) {
	vars := maps.Clone(e.globals)
	given := map[string]string{}
	for _, p := range args.Parameters {
		switch {
		case p.Value != nil:
			given[p.Name] = p.Value.String()
		case p.Default != nil:
			given[p.Name] = p.Default.String()
		}
	}
	for _, p := range tmpl.Inputs.Parameters {
		v, ok := given[p.Name]
		if !ok {
			var fallback *wfv1.AnyString
			switch {
			case p.Value != nil:
				fallback = p.Value
			case p.Default != nil:
				fallback = p.Default
			default:
				return nil, fmt.Errorf("inputs.parameters.%s was not supplied", p.Name)
			}
			s, err := substitute(fallback.String(), e.globals)
			if err != nil {
				return nil, err
			}
			v = s
		}
		vars["inputs.parameters."+p.Name] = v
	}
	return vars, nil
}

// substituteArgs substitutes the values of the parameters a step or task
// passes on.
func substituteArgs(args wfv1.Arguments, vars map[string]string) (wfv1.Arguments, error) {
	if len(args.Artifacts) > 0 {
		return args, unsupported("artifacts")
	}
	out := wfv1.Arguments{}
	for _, p := range args.Parameters {
		q := wfv1.Parameter{Name: p.Name}
		v := p.Value
		if v == nil {
			v = p.Default
		}
		if v == nil {
			return args, fmt.Errorf("argument %s has no value", p.Name)
		}
		s, err := substitute(v.String(), vars)
		if err != nil {
			return args, err
		}
		q.Value = wfv1.AnyStringPtr(s)
		out.Parameters = append(out.Parameters, q)
	}
	return out, nil
}

// Prefixes of the {{...}} references Argo resolves: one of these that
// argolocal cannot resolve is an error, as in Argo. Anything else between
// braces is left alone.
var resolvedPrefixes = []string{"inputs.", "outputs.", "workflow.", "steps.", "tasks.", "item", "pod.", "node."}

// substitute replaces the {{...}} references in s found in vars.
func substitute(s string, vars map[string]string) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			break
		}
		end := i + 2 + j + 2
		key := strings.TrimSpace(s[i+2 : i+2+j])
		if v, ok := vars[key]; ok {
			b.WriteString(s[:i])
			b.WriteString(v)
		} else {
			for _, p := range resolvedPrefixes {
				if strings.HasPrefix(key, p) {
					return "", fmt.Errorf("failed to resolve {{%s}}", key)
				}
			}
			b.WriteString(s[:end])
		}
		s = s[end:]
	}
	b.WriteString(s)
	return b.String(), nil
}

// substituteAll substitutes every string of list.
func substituteAll(list []string, vars map[string]string) ([]string, error) {
	out := make([]string, len(list))
	for i, s := range list {
		v, err := substitute(s, vars)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
