package argo

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Defaults of RenderOptions.
const (
	DefaultTTL           = 24 * time.Hour
	DefaultTimeout       = time.Hour
	DefaultMaxTimeout    = 6 * time.Hour
	DefaultPodGCStrategy = wfv1.PodGCOnPodCompletion
)

// RenderOptions are the site's settings that every Workflow gets.
type RenderOptions struct {
	// NamespaceTemplate is the main config's kubernetes.namespace (default
	// ci-{project}); see Namespace.
	NamespaceTemplate string
	// InternalURL is how workflow pods reach the daemon's git endpoint
	// (web.internal-url); the git URL of a project is
	// <InternalURL>/git/<project>.
	InternalURL string
	// TTL is how long a finished Workflow is kept (ttlStrategy; default
	// 24h).
	TTL time.Duration
	// DefaultTimeout is the activeDeadlineSeconds of a workflow whose
	// project config sets no timeout (default 1h); MaxTimeout caps what a
	// project may set (default 6h: a longer timeout is cut to it).
	DefaultTimeout, MaxTimeout time.Duration
}

func (o RenderOptions) withDefaults() RenderOptions {
	if o.NamespaceTemplate == "" {
		o.NamespaceTemplate = DefaultNamespaceTemplate
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = DefaultTimeout
	}
	if o.MaxTimeout <= 0 {
		o.MaxTimeout = DefaultMaxTimeout
	}
	o.DefaultTimeout = min(o.DefaultTimeout, o.MaxTimeout)
	return o
}

// ChangeParam is one element of the seakeeper-changes parameter: a change
// under test, in merge order (the item's own change last), with the
// speculative commit of its project and branch.
type ChangeParam struct {
	Project  string `json:"project"`
	Branch   string `json:"branch"`
	Change   int    `json:"change,omitempty"`
	Patchset int    `json:"patchset,omitempty"`
	// Ref is the change's Gerrit ref (refs/changes/…), Revision its
	// commit.
	Ref      string `json:"ref"`
	Revision string `json:"revision,omitempty"`
	// GitURL and SeakeeperRef fetch the speculative state of Project and
	// Branch, whose commit is Commit. SeakeeperRef is
	// refs/seakeeper/<buildset>, or refs/seakeeper-branch/<buildset>/<branch>
	// when the buildset touches several branches of the project (see the
	// merger).
	GitURL       string `json:"gitUrl"`
	SeakeeperRef string `json:"seakeeperRef"`
	Commit       string `json:"commit,omitempty"`
}

// GitURL returns where workflows fetch project's speculative commits.
func (o RenderOptions) GitURL(project string) string {
	return strings.TrimRight(o.InternalURL, "/") + "/git/" + project
}

// Render returns the Workflow of build action a as the project config w
// describes it (see the Workflow contract in DESIGN §4). The result is a
// fresh object the caller may change.
func (o RenderOptions) Render(a pipeline.Action, w *PipelineWorkflow) (*wfv1.Workflow, error) {
	if a.BuildSet == "" || a.Pipeline == "" || a.Change.Project == "" {
		return nil, errors.New("argo: a build action needs a pipeline, a buildset and a change")
	}
	if w == nil || (w.TemplateRef == nil) == (w.Spec == nil) {
		return nil, errors.New("argo: a workflow needs exactly one of a template reference and a spec")
	}
	o = o.withDefaults()
	c := a.Change
	raw := map[string]string{
		LabelPipeline: a.Pipeline,
		LabelProject:  c.Project,
		LabelChange:   strconv.Itoa(c.Number),
		LabelPatchset: strconv.Itoa(c.Patchset),
		LabelItem:     a.Item,
		LabelBuildSet: a.BuildSet,
	}
	labels := make(map[string]string, len(raw))
	for k, v := range raw {
		labels[k] = LabelValue(v)
	}
	annotations := maps.Clone(raw)

	var spec wfv1.WorkflowSpec
	if w.Spec != nil {
		w.Spec.DeepCopyInto(&spec)
	} else {
		spec.WorkflowTemplateRef = w.TemplateRef.DeepCopy()
	}
	spec.Arguments.Parameters = o.parameters(a, spec.Arguments.Parameters, w.Parameters)

	timeout := w.Timeout
	if timeout <= 0 {
		timeout = o.DefaultTimeout
	}
	timeout = min(timeout, o.MaxTimeout)
	deadline := int64((timeout + time.Second - 1) / time.Second)
	ttl := int32(min(o.TTL/time.Second, 1<<31-1))
	prio := a.Priority
	spec.ActiveDeadlineSeconds = &deadline
	spec.Priority = &prio
	spec.TTLStrategy = &wfv1.TTLStrategy{SecondsAfterCompletion: &ttl}
	spec.PodGC = &wfv1.PodGC{Strategy: DefaultPodGCStrategy}
	spec.Shutdown = ""

	return &wfv1.Workflow{
		TypeMeta: metav1.TypeMeta{APIVersion: wfv1.SchemeGroupVersion.String(), Kind: wfv1.WorkflowSchemaGroupVersionKind.Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name:        WorkflowName(a),
			Namespace:   Namespace(o.NamespaceTemplate, c.Project),
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: spec,
	}, nil
}

// parameters returns the workflow arguments: those of an inline spec, the
// project's extra parameters (replacing same-named ones), then Seakeeper's.
func (o RenderOptions) parameters(a pipeline.Action, inline []wfv1.Parameter, extra map[string]string) []wfv1.Parameter {
	out := slices.Clone(inline)
	set := func(name, value string) {
		v := wfv1.AnyStringPtr(value)
		for i := range out {
			if out[i].Name == name {
				out[i].Value, out[i].ValueFrom, out[i].Default = v, nil, nil
				return
			}
		}
		out = append(out, wfv1.Parameter{Name: name, Value: v})
	}
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		set(name, extra[name])
	}
	c := a.Change
	ref := "refs/seakeeper/" + a.BuildSet
	for _, p := range [][2]string{
		{"project", c.Project},
		{"branch", c.Branch},
		{"change", strconv.Itoa(c.Number)},
		{"patchset", strconv.Itoa(c.Patchset)},
		{"pipeline", a.Pipeline},
		{"git-url", o.GitURL(c.Project)},
		{"ref", ref},
		{"commit", commitOf(a.Commits, c)},
		{"changes", o.changesJSON(a, ref)},
	} {
		set(ParamPrefix+p[0], p[1])
	}
	return out
}

func (o RenderOptions) changesJSON(a pipeline.Action, ref string) string {
	changes := a.Changes
	if len(changes) == 0 {
		changes = []pipeline.Spec{a.Change}
	}
	branches := map[string]map[string]bool{}
	for _, c := range changes {
		if branches[c.Project] == nil {
			branches[c.Project] = map[string]bool{}
		}
		branches[c.Project][branchLabel(c)] = true
	}
	list := make([]ChangeParam, 0, len(changes))
	for _, c := range changes {
		r := ref
		if len(branches[c.Project]) > 1 {
			r = "refs/seakeeper-branch/" + a.BuildSet + "/" + branchLabel(c)
		}
		list = append(list, ChangeParam{
			Project: c.Project, Branch: c.Branch, Change: c.Number, Patchset: c.Patchset,
			Ref: c.Ref, Revision: c.Commit,
			GitURL: o.GitURL(c.Project), SeakeeperRef: r, Commit: commitOf(a.Commits, c),
		})
	}
	data, _ := json.Marshal(list) // strings and numbers: cannot fail
	return string(data)
}

// branchLabel names the branch of a change as the merger's refs do: the
// branch, or the ref of a ref item.
func branchLabel(c pipeline.Spec) string {
	if c.Branch != "" {
		return c.Branch
	}
	return c.Ref
}

// commitOf returns the speculative commit of c's project and branch.
func commitOf(commits []pipeline.ProjectCommit, c pipeline.Spec) string {
	for _, pc := range commits {
		if pc.Project == c.Project && pc.Branch == c.Branch {
			return pc.Commit
		}
	}
	return ""
}
