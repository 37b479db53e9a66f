package pipeline

import (
	"fmt"
	"regexp"
)

// Manager names the queueing discipline of a pipeline.
type Manager string

// The three managers (Zuul's IndependentPipelineManager,
// DependentPipelineManager and SupercedentPipelineManager).
const (
	Independent Manager = "independent"
	Dependent   Manager = "dependent"
	Supercedent Manager = "supercedent"
)

// Outcome names what a report says about an item.
type Outcome string

// Report outcomes. Each selects a reporter in PipelineConfig.
const (
	OutcomeStart         Outcome = "start"
	OutcomeSuccess       Outcome = "success"
	OutcomeFailure       Outcome = "failure"
	OutcomeMergeConflict Outcome = "merge-conflict"
	OutcomeConfigError   Outcome = "config-error"
	// OutcomeDequeued is a message-only notice (no labels) that an item left
	// the pipeline for a reason other than its own test result.
	OutcomeDequeued Outcome = "dequeued"
)

// Config is the pipeline part of the main configuration: every pipeline and
// the shared queues of the dependent ones. It is immutable once Compile
// succeeded and is shared freely between goroutines.
type Config struct {
	Pipelines []PipelineConfig `yaml:"pipelines"`
	Queues    []QueueConfig    `yaml:"queues"`

	compiled bool
	byName   map[string]*PipelineConfig
	queueOf  map[string]string // project -> shared queue name
}

// QueueConfig is a named shared queue: dependent pipelines test and merge
// changes of all its projects in one sequence, as Zuul's shared change queues.
type QueueConfig struct {
	Name     string   `yaml:"name"`
	Projects []string `yaml:"projects"`
}

// PipelineConfig configures one pipeline.
type PipelineConfig struct {
	Name        string  `yaml:"name"`
	Description string  `yaml:"description"`
	Manager     Manager `yaml:"manager"`
	// Precedence is high, normal (default) or low; it becomes the workflow
	// priority together with the manager.
	Precedence string `yaml:"precedence"`
	// Projects is an optional regular expression; when set only matching
	// projects enter the pipeline.
	Projects string          `yaml:"projects"`
	Trigger  []TriggerConfig `yaml:"trigger"`
	Require  Requirement     `yaml:"require"`
	Reject   Requirement     `yaml:"reject"`
	// DequeueOnNewPatchset removes an item when its change gets a newer
	// patchset (default true).
	DequeueOnNewPatchset *bool `yaml:"dequeue-on-new-patchset"`
	// FailFast cancels an item's workflow as soon as a node of it failed.
	FailFast bool            `yaml:"fail-fast"`
	Window   WindowConfig    `yaml:"window"`
	Report   ReportersConfig `yaml:"report"`

	triggers []compiledTrigger
	projRE   *regexp.Regexp
	req      compiledRequirement
	rej      compiledRequirement
}

// TriggerConfig matches a normalised trigger event. Every field that is set
// must match.
type TriggerConfig struct {
	// Event lists event types, e.g. patchset-created, comment-added.
	Event []string `yaml:"event"`
	// Branch is a regular expression on the change's branch (or, for
	// ref-updated, the branch named by the ref).
	Branch string `yaml:"branch"`
	// Ref is a regular expression on the full ref of ref-updated events.
	Ref string `yaml:"ref"`
	// Comment is a regular expression searched in the comment text.
	Comment string `yaml:"comment"`
	// Username is a regular expression on the account that caused the event.
	Username string `yaml:"username"`
	// Approval lists votes that the event must newly grant, all of them.
	Approval []ApprovalMatch `yaml:"approval"`
}

// ApprovalMatch matches a vote: the label, one of the values, and optionally
// the voter's username (a regular expression).
type ApprovalMatch struct {
	Label    string `yaml:"label"`
	Value    []int  `yaml:"value"`
	Username string `yaml:"username"`

	userRE *regexp.Regexp
}

// Requirement is a set of conditions on a change. In `require` every set
// condition must hold; in `reject` any set condition that holds excludes the
// change.
type Requirement struct {
	Open            *bool           `yaml:"open"`
	CurrentPatchset *bool           `yaml:"current-patchset"`
	WIP             *bool           `yaml:"wip"`
	Approval        []ApprovalMatch `yaml:"approval"`
}

// WindowConfig is the rate limit of a dependent pipeline's shared queues.
type WindowConfig struct {
	Initial        int     `yaml:"initial"`
	Floor          int     `yaml:"floor"`
	Ceiling        int     `yaml:"ceiling"` // 0: unlimited
	IncreaseType   string  `yaml:"increase-type"`
	IncreaseFactor float64 `yaml:"increase-factor"`
	DecreaseType   string  `yaml:"decrease-type"`
	DecreaseFactor float64 `yaml:"decrease-factor"`
}

// ReportersConfig holds what to post for each outcome.
type ReportersConfig struct {
	Start         *Reporter `yaml:"start"`
	Success       *Reporter `yaml:"success"`
	Failure       *Reporter `yaml:"failure"`
	MergeConflict *Reporter `yaml:"merge-conflict"`
	ConfigError   *Reporter `yaml:"config-error"`
}

// Reporter is what one outcome posts on the change.
type Reporter struct {
	Labels map[string]int `yaml:"labels"`
	// Submit asks Gerrit to submit the change (success of a dependent
	// pipeline only).
	Submit bool `yaml:"submit"`
	// Message is the first paragraph of the review message.
	Message string `yaml:"message"`
}

// Window defaults, as Zuul's.
const (
	DefaultWindow      = 20
	DefaultWindowFloor = 3
)

// ConfigError is one problem in a configuration, with a path such as
// "pipelines[1].trigger[0].comment" that the YAML loader maps to a line.
type ConfigError struct {
	Path string
	Msg  string
}

func (e ConfigError) Error() string { return e.Path + ": " + e.Msg }

// Pipeline returns the named pipeline, or nil.
func (c *Config) Pipeline(name string) *PipelineConfig {
	if c.byName == nil {
		return nil
	}
	return c.byName[name]
}

// QueueOf returns the shared queue name of project, or "" when the project
// has a queue of its own.
func (c *Config) QueueOf(project string) string { return c.queueOf[project] }

// DequeueOnNew reports whether a new patchset removes older items.
func (p *PipelineConfig) DequeueOnNew() bool {
	return p.DequeueOnNewPatchset == nil || *p.DequeueOnNewPatchset
}

// Priority is the workflow priority of the pipeline's builds: gate work
// outranks check work, and precedence shifts it.
func (p *PipelineConfig) Priority() int32 {
	base := int32(100)
	if p.Manager == Dependent {
		base = 200
	}
	switch p.Precedence {
	case "high":
		base += 50
	case "low":
		base -= 50
	}
	return base
}

// reporter returns the reporter for an outcome, falling back to the failure
// reporter for merge conflicts and configuration errors, as Zuul does.
func (p *PipelineConfig) reporter(o Outcome) *Reporter {
	r := p.Report
	switch o {
	case OutcomeStart:
		return r.Start
	case OutcomeSuccess:
		return r.Success
	case OutcomeFailure:
		return r.Failure
	case OutcomeMergeConflict:
		if r.MergeConflict != nil {
			return r.MergeConflict
		}
		return r.Failure
	case OutcomeConfigError:
		if r.ConfigError != nil {
			return r.ConfigError
		}
		return r.Failure
	}
	return nil
}

// Compile fills defaults, compiles regular expressions and checks the
// configuration. It returns every problem it finds, not only the first.
func (c *Config) Compile() []ConfigError {
	var errs []ConfigError
	add := func(path, format string, args ...any) {
		errs = append(errs, ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	c.byName = map[string]*PipelineConfig{}
	c.queueOf = map[string]string{}
	queueNames := map[string]bool{}
	for i := range c.Queues {
		q := &c.Queues[i]
		path := fmt.Sprintf("queues[%d]", i)
		if q.Name == "" {
			add(path+".name", "a shared queue needs a name")
		} else if queueNames[q.Name] {
			add(path+".name", "shared queue %q is defined twice", q.Name)
		}
		queueNames[q.Name] = true
		if len(q.Projects) == 0 {
			add(path+".projects", "shared queue %q lists no projects", q.Name)
		}
		for j, p := range q.Projects {
			if p == "" {
				add(fmt.Sprintf("%s.projects[%d]", path, j), "empty project name")
				continue
			}
			if q.Name == "" {
				continue
			}
			if other, ok := c.queueOf[p]; ok {
				add(fmt.Sprintf("%s.projects[%d]", path, j), "project %q is already in shared queue %q", p, other)
				continue
			}
			c.queueOf[p] = q.Name
		}
	}
	if len(c.Pipelines) == 0 {
		add("pipelines", "no pipeline is defined")
	}
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		path := fmt.Sprintf("pipelines[%d]", i)
		if p.Name == "" {
			add(path+".name", "a pipeline needs a name")
		} else if !validName.MatchString(p.Name) {
			add(path+".name", "pipeline name %q must be lower-case letters, digits and dashes", p.Name)
		} else if c.byName[p.Name] != nil {
			add(path+".name", "pipeline %q is defined twice", p.Name)
		} else {
			c.byName[p.Name] = p
		}
		errs = append(errs, p.compile(path)...)
	}
	c.compiled = len(errs) == 0
	return errs
}

var validName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func (p *PipelineConfig) compile(path string) []ConfigError {
	var errs []ConfigError
	add := func(sub, format string, args ...any) {
		errs = append(errs, ConfigError{Path: path + sub, Msg: fmt.Sprintf(format, args...)})
	}
	re := func(sub, expr string, whole bool) *regexp.Regexp {
		if expr == "" {
			return nil
		}
		if _, err := regexp.Compile(expr); err != nil {
			add(sub, "bad regular expression %q: %v", expr, err)
			return nil
		}
		if whole {
			expr = anchor(expr)
		}
		return regexp.MustCompile(expr)
	}
	switch p.Manager {
	case Independent, Dependent, Supercedent:
	case "":
		add(".manager", "manager is required (independent, dependent or supercedent)")
	default:
		add(".manager", "unknown manager %q (want independent, dependent or supercedent)", p.Manager)
	}
	switch p.Precedence {
	case "", "normal", "high", "low":
	default:
		add(".precedence", "unknown precedence %q (want high, normal or low)", p.Precedence)
	}
	p.projRE = re(".projects", p.Projects, true)
	if len(p.Trigger) == 0 {
		add(".trigger", "pipeline %q has no trigger", p.Name)
	}
	p.triggers = nil
	for i, t := range p.Trigger {
		tp := fmt.Sprintf(".trigger[%d]", i)
		ct := compiledTrigger{events: map[string]bool{}, approvals: t.Approval}
		if len(t.Event) == 0 {
			add(tp+".event", "a trigger needs at least one event type")
		}
		for j, e := range t.Event {
			if !knownEventTypes[e] {
				add(fmt.Sprintf("%s.event[%d]", tp, j), "unknown event type %q", e)
			}
			ct.events[e] = true
		}
		ct.branch = re(tp+".branch", t.Branch, false)
		ct.ref = re(tp+".ref", t.Ref, false)
		ct.comment = re(tp+".comment", t.Comment, false)
		ct.username = re(tp+".username", t.Username, true)
		if t.Comment != "" && !ct.events["comment-added"] {
			add(tp+".comment", "a comment filter only matches comment-added events")
		}
		if t.Ref != "" && !ct.events["ref-updated"] {
			add(tp+".ref", "a ref filter only matches ref-updated events")
		}
		ct.approvals = compileApprovals(tp+".approval", t.Approval, add)
		p.triggers = append(p.triggers, ct)
	}
	p.Require.Approval = compileApprovals(".require.approval", p.Require.Approval, add)
	p.Reject.Approval = compileApprovals(".reject.approval", p.Reject.Approval, add)
	p.req = compiledRequirement{Requirement: p.Require}
	p.rej = compiledRequirement{Requirement: p.Reject}

	if p.Manager == Dependent {
		errs = append(errs, p.Window.compile(path+".window")...)
	} else if p.Manager.known() && p.Window != (WindowConfig{}) {
		add(".window", "a window only applies to dependent pipelines, not to %s ones", p.Manager)
	}
	type rep struct {
		name string
		r    *Reporter
	}
	reporters := []rep{{"start", p.Report.Start}, {"success", p.Report.Success}, {"failure", p.Report.Failure},
		{"merge-conflict", p.Report.MergeConflict}, {"config-error", p.Report.ConfigError}}
	for _, r := range reporters {
		for label := range r.r.labels() {
			if !validLabel.MatchString(label) {
				add(".report."+r.name+".labels", "%q is not a Gerrit label name", label)
			}
		}
		if r.r == nil || !r.r.Submit || r.name == "success" && p.Manager == Dependent {
			continue
		}
		switch {
		case p.Manager != Dependent && p.Manager.known():
			add(".report."+r.name+".submit", "only a dependent pipeline may submit")
		case p.Manager == Dependent:
			add(".report."+r.name+".submit", "only the success report may submit")
		}
	}
	if p.Manager == Dependent && (p.Report.Success == nil || !p.Report.Success.Submit) {
		add(".report.success.submit", "a dependent pipeline must submit on success, or items behind would be tested on changes that never merge")
	}
	return errs
}

var validLabel = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

func (r *Reporter) labels() map[string]int {
	if r == nil {
		return nil
	}
	return r.Labels
}

func (m Manager) known() bool { return m == Independent || m == Dependent || m == Supercedent }

func compileApprovals(path string, in []ApprovalMatch, add func(string, string, ...any)) []ApprovalMatch {
	out := make([]ApprovalMatch, len(in))
	for i, a := range in {
		ap := fmt.Sprintf("%s[%d]", path, i)
		if a.Label == "" {
			add(ap+".label", "an approval needs a label")
		}
		if len(a.Value) == 0 {
			add(ap+".value", "an approval needs at least one value")
		}
		if a.Username != "" {
			if _, err := regexp.Compile(a.Username); err != nil {
				add(ap+".username", "bad regular expression %q: %v", a.Username, err)
			} else {
				a.userRE = regexp.MustCompile(anchor(a.Username))
			}
		}
		out[i] = a
	}
	return out
}

// anchor makes a project or user pattern match whole names.
func anchor(expr string) string {
	if expr == "" {
		return ""
	}
	return "^(?:" + expr + ")$"
}

var knownEventTypes = map[string]bool{
	"patchset-created": true, "comment-added": true, "change-merged": true,
	"change-abandoned": true, "change-restored": true, "ref-updated": true,
	"topic-changed": true, "wip-state-changed": true, "private-state-changed": true,
	"hashtags-changed": true, "reviewer-added": true, "vote-deleted": true,
	"project-created": true, "change-deleted": true,
}
