package argo

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"gopkg.in/yaml.v3"
	sigsjson "sigs.k8s.io/json"

	"github.com/seakeeper-ci/seakeeper/internal/yamlstrict"
)

// checkWorkflow checks the inline workflow n written at path against the
// allowlist and decodes its spec. Every problem is positioned at its line.
func checkWorkflow(file, path string, n *yaml.Node) (*wfv1.WorkflowSpec, []error) {
	w := &walker{file: file, pos: map[string]yamlstrict.Pos{}, budget: 200000, expanding: map[*yaml.Node]bool{}}
	w.pos[path] = yamlstrict.Pos{Line: n.Line, Column: n.Column}
	v := w.value(n, workflowRule, path)
	if len(w.errs) > 0 {
		return nil, w.errs
	}
	specPath := yamlstrict.Key(path, "spec")
	m, _ := v.(map[string]any)
	raw, ok := m["spec"]
	if !ok {
		return nil, []error{w.errorf(path, "required: spec, the Workflow spec (entrypoint, templates, ...)")}
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, []error{w.errorf(specPath, "%v", err)}
	}
	var spec wfv1.WorkflowSpec
	strict, err := sigsjson.UnmarshalStrict(data, &spec)
	if err != nil {
		return nil, []error{w.errorf(specPath, "%s", strings.TrimPrefix(err.Error(), "json: "))}
	}
	for _, e := range strict {
		p := specPath
		if fe, ok := e.(sigsjson.FieldError); ok {
			p = specPath + "." + fe.FieldPath()
			fe.SetFieldPath("")
		}
		w.errs = append(w.errs, w.errorf(p, "%s", strings.TrimSpace(strings.TrimPrefix(e.Error(), "json: "))))
	}
	switch {
	case spec.Entrypoint == "":
		w.errs = append(w.errs, w.errorf(yamlstrict.Key(specPath, "entrypoint"), "required: the name of the template to run"))
	case len(spec.Templates) == 0:
		w.errs = append(w.errs, w.errorf(yamlstrict.Key(specPath, "templates"), "required: at least one template"))
	}
	for i, p := range spec.Arguments.Parameters {
		if strings.HasPrefix(strings.ToLower(p.Name), ParamPrefix) {
			at := yamlstrict.Index(yamlstrict.Key(yamlstrict.Key(specPath, "arguments"), "parameters"), i)
			w.errs = append(w.errs, w.errorf(at, "parameters named %s* are set by Seakeeper", ParamPrefix))
		}
	}
	if len(w.errs) > 0 {
		return nil, w.errs
	}
	return &spec, nil
}

// walker turns a YAML subtree into JSON values, keeping only what its rule
// allows and recording the position of every value.
type walker struct {
	file      string
	errs      []error
	pos       map[string]yamlstrict.Pos
	budget    int
	expanding map[*yaml.Node]bool
}

// errorf returns an error about path, at the nearest position recorded.
func (w *walker) errorf(path, format string, args ...any) error {
	p := path
	for {
		if pos, ok := w.pos[p]; ok {
			return &yamlstrict.Error{File: w.file, Line: pos.Line, Column: pos.Column, Path: path, Msg: fmt.Sprintf(format, args...)}
		}
		parent, ok := yamlstrict.Parent(p)
		if !ok {
			return &yamlstrict.Error{File: w.file, Path: path, Msg: fmt.Sprintf(format, args...)}
		}
		p = parent
	}
}

func (w *walker) at(n *yaml.Node, path, format string, args ...any) {
	if len(w.errs) < 100 {
		w.errs = append(w.errs, &yamlstrict.Error{File: w.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
}

// value converts n, found at path, under rule r (nil: anything).
func (w *walker) value(n *yaml.Node, r *rule, path string) any {
	if w.budget--; w.budget < 0 {
		if w.budget == -1 {
			w.at(n, path, "the workflow expands to too many values (aliases nested too deeply?)")
		}
		return nil
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil || w.expanding[n.Alias] {
			w.at(n, path, "alias *%s refers to no anchor, or is used inside its own anchor", n.Value)
			return nil
		}
		w.expanding[n.Alias] = true
		defer delete(w.expanding, n.Alias)
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	switch {
	case r != nil && r.fields != nil:
		if n.Kind != yaml.MappingNode {
			w.at(n, path, "expected a mapping, found %s", kindOf(n))
			return nil
		}
		return w.mapping(n, r, path)
	case r != nil && r.elem != nil:
		if n.Kind != yaml.SequenceNode {
			w.at(n, path, "expected a list, found %s", kindOf(n))
			return nil
		}
		return w.sequence(n, r.elem, path)
	}
	switch n.Kind {
	case yaml.MappingNode:
		return w.mapping(n, nil, path)
	case yaml.SequenceNode:
		return w.sequence(n, nil, path)
	case yaml.ScalarNode:
		return w.scalar(n, path)
	}
	w.at(n, path, "unexpected %s", kindOf(n))
	return nil
}

func (w *walker) sequence(n *yaml.Node, elem *rule, path string) []any {
	out := make([]any, 0, len(n.Content))
	for i, c := range n.Content {
		p := yamlstrict.Index(path, i)
		w.record(p, c)
		out = append(out, w.value(c, elem, p))
	}
	return out
}

func (w *walker) mapping(n *yaml.Node, r *rule, path string) map[string]any {
	out := map[string]any{}
	for _, e := range w.entries(n, path, map[string]*yaml.Node{}) {
		p := yamlstrict.Key(path, e.key.Value)
		w.record(p, e.key)
		if r == nil {
			out[e.key.Value] = w.value(e.val, nil, p)
			continue
		}
		sub, ok := r.fields[e.key.Value]
		switch {
		case ok:
			out[e.key.Value] = w.value(e.val, sub, p)
		case r.known[e.key.Value] || neverAllowed[e.key.Value]:
			w.at(e.key, p, "not allowed in project config")
		default:
			w.at(e.key, p, "unknown key%s", suggestKey(e.key.Value, r.allowed()))
		}
	}
	return out
}

type kv struct{ key, val *yaml.Node }

// entries returns the keys of mapping n, with "<<" merges applied: keys
// written in n win over merged ones, and among merged mappings the first
// one giving a key wins. seen holds the keys already taken.
func (w *walker) entries(n *yaml.Node, path string, seen map[string]*yaml.Node) []kv {
	var out []kv
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if w.budget--; w.budget < 0 {
			break
		}
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.at(k, path, "a key must be a plain string, not %s", kindOf(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.at(k, yamlstrict.Key(path, k.Value), "duplicate key (first written on line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, kv{k, v})
	}
	for _, m := range merges {
		for _, src := range w.mergeSources(m, path) {
			for _, e := range w.entries(src, path, map[string]*yaml.Node{}) {
				if _, taken := seen[e.key.Value]; !taken {
					seen[e.key.Value] = e.key
					out = append(out, e)
				}
			}
		}
	}
	return out
}

func (w *walker) mergeSources(v *yaml.Node, path string) []*yaml.Node {
	resolve := func(n *yaml.Node) *yaml.Node {
		for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
			n = n.Alias
		}
		return n
	}
	n := resolve(v)
	switch {
	case n != nil && n.Kind == yaml.MappingNode:
		return []*yaml.Node{n}
	case n != nil && n.Kind == yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range n.Content {
			if m := resolve(c); m != nil && m.Kind == yaml.MappingNode {
				out = append(out, m)
			} else {
				w.at(c, path, "a merge (<<) list must hold mappings")
			}
		}
		return out
	}
	w.at(v, path, "a merge (<<) needs a mapping or a list of mappings")
	return nil
}

func (w *walker) scalar(n *yaml.Node, path string) any {
	switch n.ShortTag() {
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return u
		}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
	case "!!str", "!!timestamp", "!!binary":
		return n.Value
	default:
		w.at(n, path, "unsupported YAML tag %s", n.ShortTag())
		return nil
	}
	w.at(n, path, "cannot use %q here", n.Value)
	return nil
}

func (w *walker) record(path string, n *yaml.Node) {
	if _, ok := w.pos[path]; !ok {
		w.pos[path] = yamlstrict.Pos{Line: n.Line, Column: n.Column}
	}
}

func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// suggestKey completes an "unknown key" message with the allowed key that
// differs from key only in case, or by at most two letters.
func suggestKey(key string, allowed []string) string {
	best, bestDist := "", 3
	for _, a := range allowed {
		d := editDistance(strings.ToLower(key), strings.ToLower(a))
		if d < bestDist && d < len(key) {
			best, bestDist = a, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (allowed here: " + strings.Join(allowed, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
