package argo

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"gopkg.in/yaml.v3"

	"github.com/seakeeper-ci/seakeeper/internal/yamlstrict"
)

// ConfigFileName is the project config's file on refs/meta/config.
const ConfigFileName = "seakeeper.yaml"

// ConfigError is a project config that cannot produce a workflow: a
// missing or broken seakeeper.yaml, or one without a workflow for the
// pipeline. Its text, one problem per line as "seakeeper.yaml:12: path:
// message", goes into BuildResult.ConfigError and from there into the report
// on the triggering change.
type ConfigError struct {
	Msg string
}

func (e *ConfigError) Error() string { return e.Msg }

// ProjectConfig is a parsed seakeeper.yaml. It is immutable and shared.
//
// The file has an optional default section at the top level and one
// section per pipeline under `pipelines`, each with the same keys:
//
//	workflowTemplateRef: {name: ci, clusterScope: false}   # preferred, or
//	workflow: {spec: {entrypoint: main, templates: [...]}} # an inline spec
//	timeout: 2h                                           # activeDeadlineSeconds
//	parameters: {lint: "true"}                            # extra arguments
//	pipelines:
//	  gate: {timeout: 3h}
//
// A pipeline section that names a workflowTemplateRef or a workflow
// replaces the default's; its timeout replaces the default's; its
// parameters are added to the default's, replacing those of the same name.
type ProjectConfig struct {
	// SHA is the refs/meta/config commit the file was read from.
	SHA       string
	defaults  PipelineWorkflow
	pipelines map[string]PipelineWorkflow
}

// PipelineWorkflow is what a project runs for one pipeline: exactly one of
// TemplateRef and Spec is set.
type PipelineWorkflow struct {
	TemplateRef *wfv1.WorkflowTemplateRef
	// Spec holds only the allowlisted fields of an inline spec. It is
	// shared: Render copies it.
	Spec *wfv1.WorkflowSpec
	// Timeout is the workflow's activeDeadlineSeconds; 0 means the site's
	// default.
	Timeout time.Duration
	// Parameters are extra workflow arguments.
	Parameters map[string]string
}

// For returns the workflow of pipeline, or a *ConfigError when the file
// defines none for it.
func (c *ProjectConfig) For(pipeline string) (*PipelineWorkflow, error) {
	w := c.defaults
	if p, ok := c.pipelines[pipeline]; ok {
		if p.TemplateRef != nil || p.Spec != nil {
			w.TemplateRef, w.Spec = p.TemplateRef, p.Spec
		}
		if p.Timeout != 0 {
			w.Timeout = p.Timeout
		}
		if len(p.Parameters) > 0 {
			merged := make(map[string]string, len(w.Parameters)+len(p.Parameters))
			for k, v := range w.Parameters {
				merged[k] = v
			}
			for k, v := range p.Parameters {
				merged[k] = v
			}
			w.Parameters = merged
		}
	}
	if w.TemplateRef == nil && w.Spec == nil {
		return nil, &ConfigError{Msg: fmt.Sprintf("%s: no workflow for pipeline %q: set workflowTemplateRef or workflow at the top level or under pipelines.%s",
			ConfigFileName, pipeline, pipeline)}
	}
	return &w, nil
}

// fileConfig is the shape of seakeeper.yaml for yamlstrict.
type fileConfig struct {
	section   `yaml:",inline"`
	Pipelines map[string]section `yaml:"pipelines"`
}

type section struct {
	WorkflowTemplateRef *templateRef      `yaml:"workflowTemplateRef"`
	Workflow            any               `yaml:"workflow"` // checked by policy.go
	Timeout             *time.Duration    `yaml:"timeout"`
	Parameters          map[string]string `yaml:"parameters"`
}

type templateRef struct {
	Name         string `yaml:"name"`
	ClusterScope bool   `yaml:"clusterScope"`
}

var (
	paramName    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// ParamPrefix starts the names of the parameters Seakeeper sets; project
// config may not use it.
const ParamPrefix = "seakeeper-"

// ParseProjectConfig parses the seakeeper.yaml read from commit sha. file
// names it in messages. When pipelines is not nil, a section for a pipeline
// not in it is an error (a typo would otherwise go unnoticed). The error is
// a *ConfigError listing every problem with its line.
func ParseProjectConfig(file, sha string, data []byte, pipelines []string) (*ProjectConfig, error) {
	var fc fileConfig
	lines, errs := yamlstrict.Decode(file, data, &fc)
	// The inline workflows are checked below, with positions inside them;
	// drop what the generic decoder said about those subtrees.
	errs = slices.DeleteFunc(errs, func(err error) bool {
		e, ok := err.(*yamlstrict.Error)
		return ok && isWorkflowPath(e.Path) && !strings.HasPrefix(e.Msg, "duplicate key")
	})
	var root *yaml.Node
	if !lines.Reported("") {
		var doc yaml.Node
		if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) == 1 {
			root = doc.Content[0]
		}
	}
	keys := keyIndex(root)
	pc := &ProjectConfig{SHA: sha, pipelines: map[string]PipelineWorkflow{}}
	var errs2 []error
	pc.defaults, errs2 = compileSection(file, "", fc.section, lines, keys)
	errs = append(errs, errs2...)
	for name, s := range fc.Pipelines {
		path := yamlstrict.Key("pipelines", name)
		if pipelines != nil && !slices.Contains(pipelines, name) {
			errs = append(errs, lines.Errorf(path, "no such pipeline (the pipelines are: %s)", strings.Join(pipelines, ", ")))
		}
		pc.pipelines[name], errs2 = compileSection(file, path, s, lines, keys)
		errs = append(errs, errs2...)
	}
	if len(errs) > 0 {
		yamlstrict.Sort(errs)
		return nil, &ConfigError{Msg: yamlstrict.List(errs).Error()}
	}
	return pc, nil
}

func isWorkflowPath(p string) bool {
	for {
		if p == "workflow" || strings.HasPrefix(p, "pipelines.") && strings.HasSuffix(p, ".workflow") {
			return true
		}
		parent, ok := yamlstrict.Parent(p)
		if !ok {
			return false
		}
		p = parent
	}
}

func compileSection(file, path string, s section, lines *yamlstrict.Lines, keys map[[2]int]*yaml.Node) (PipelineWorkflow, []error) {
	var w PipelineWorkflow
	var errs []error
	at := func(key string) string { return yamlstrict.Key(path, key) }
	problem := func(p, format string, args ...any) {
		if !lines.Reported(p) { // the decoder said it already
			errs = append(errs, lines.Errorf(p, format, args...))
		}
	}
	if r := s.WorkflowTemplateRef; r != nil {
		p := yamlstrict.Key(at("workflowTemplateRef"), "name")
		switch {
		case r.Name == "":
			problem(p, "required: the name of a WorkflowTemplate")
		case len(r.Name) > 253 || !dnsSubdomain.MatchString(r.Name):
			problem(p, "%q is not a valid object name (lower-case letters, digits, '-' and '.')", r.Name)
		}
		w.TemplateRef = &wfv1.WorkflowTemplateRef{Name: r.Name, ClusterScope: r.ClusterScope}
	}
	if s.Workflow != nil {
		p := at("workflow")
		if s.WorkflowTemplateRef != nil {
			problem(p, "set either workflowTemplateRef or workflow, not both")
		}
		pos, _ := lines.Lookup(p)
		if n := keys[[2]int{pos.Line, pos.Column}]; n != nil {
			spec, werrs := checkWorkflow(file, p, n)
			errs = append(errs, werrs...)
			w.Spec = spec
		}
	}
	if s.Timeout != nil {
		if *s.Timeout <= 0 {
			problem(at("timeout"), "must be positive, such as 90m or 2h")
		}
		w.Timeout = *s.Timeout
	}
	for name, v := range s.Parameters {
		p := yamlstrict.Key(at("parameters"), name)
		switch {
		case strings.HasPrefix(strings.ToLower(name), ParamPrefix):
			problem(p, "parameters named %s* are set by Seakeeper", ParamPrefix)
		case !paramName.MatchString(name):
			problem(p, "not a valid parameter name (letters, digits, '_', '-' and '.')")
		}
		if w.Parameters == nil {
			w.Parameters = map[string]string{}
		}
		w.Parameters[name] = v
	}
	return w, errs
}

// keyIndex maps the position of every mapping key in the document to the
// key's value, so that a path whose key position yamlstrict recorded leads
// to its value node, whatever anchors, aliases and merges it went through.
func keyIndex(root *yaml.Node) map[[2]int]*yaml.Node {
	idx := map[[2]int]*yaml.Node{}
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || depth > 200 {
			return
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				idx[[2]int{n.Content[i].Line, n.Content[i].Column}] = n.Content[i+1]
			}
		}
		if n.Kind != yaml.AliasNode {
			for _, c := range n.Content {
				walk(c, depth+1)
			}
		}
	}
	walk(root, 0)
	return idx
}
