package pipeline

import (
	"fmt"
	"regexp"
	"strings"
)

type compiledTrigger struct {
	events                         map[string]bool
	branch, ref, comment, username *regexp.Regexp
	approvals                      []ApprovalMatch
}

type compiledRequirement struct {
	Requirement
}

// branchOf returns the branch a trigger's branch filter applies to.
func branchOf(ev *TriggerEvent) string {
	if ev.Branch != "" {
		return ev.Branch
	}
	if ev.Change != nil {
		return ev.Change.Branch
	}
	return strings.TrimPrefix(ev.Ref, "refs/heads/")
}

func (t *compiledTrigger) matches(ev *TriggerEvent) bool {
	if !t.events[ev.Type] {
		return false
	}
	if t.branch != nil && !t.branch.MatchString(branchOf(ev)) {
		return false
	}
	if t.ref != nil && !t.ref.MatchString(ev.Ref) {
		return false
	}
	if t.comment != nil && !t.comment.MatchString(ev.Comment) {
		return false
	}
	if t.username != nil && !t.username.MatchString(ev.Account) {
		return false
	}
	for _, want := range t.approvals {
		if !eventGrants(ev, want) {
			return false
		}
	}
	return true
}

// eventGrants reports whether the event newly grants a vote matching want.
// A vote repeated unchanged (oldValue == value) grants nothing: it is how
// Gerrit reports a plain comment on an already approved change.
func eventGrants(ev *TriggerEvent, want ApprovalMatch) bool {
	if want.userRE != nil && !want.userRE.MatchString(ev.Account) {
		return false
	}
	for _, a := range ev.Approvals {
		if !strings.EqualFold(a.Label, want.Label) || !containsInt(want.Value, a.Value) {
			continue
		}
		if a.OldValue != nil && *a.OldValue == a.Value {
			continue
		}
		return true
	}
	return false
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func hasApproval(c *Change, want ApprovalMatch) bool {
	for _, a := range c.Approvals {
		if strings.EqualFold(a.Label, want.Label) && containsInt(want.Value, a.Value) &&
			(want.userRE == nil || want.userRE.MatchString(a.By)) {
			return true
		}
	}
	return false
}

func describeApproval(a ApprovalMatch) string {
	vals := make([]string, len(a.Value))
	for i, v := range a.Value {
		vals[i] = fmt.Sprintf("%+d", v)
	}
	s := a.Label + " " + strings.Join(vals, "/")
	if a.Username != "" {
		s += " by " + a.Username
	}
	return s
}

// unmet returns why c does not meet the pipeline's require and reject
// conditions, or "" when it does. patchset is the patchset under test.
func (p *PipelineConfig) unmet(c *Change, patchset int) string {
	if c.IsRef() {
		return ""
	}
	current := patchset == 0 || patchset == c.Patchset
	r := p.req.Requirement
	if r.Open != nil && *r.Open != c.isOpen() {
		return boolWord(*r.Open, "it is not open", "it is open")
	}
	if r.CurrentPatchset != nil && *r.CurrentPatchset != current {
		return boolWord(*r.CurrentPatchset, fmt.Sprintf("patchset %d is not the current patchset %d", patchset, c.Patchset), "it is the current patchset")
	}
	if r.WIP != nil && *r.WIP != c.WIP {
		return boolWord(*r.WIP, "it is not work in progress", "it is work in progress")
	}
	for _, a := range r.Approval {
		if !hasApproval(c, a) {
			return "it lacks " + describeApproval(a)
		}
	}
	x := p.rej.Requirement
	if x.Open != nil && *x.Open == c.isOpen() {
		return boolWord(*x.Open, "it is open", "it is not open")
	}
	if x.CurrentPatchset != nil && *x.CurrentPatchset == current {
		return boolWord(*x.CurrentPatchset, "it is the current patchset", "it is not the current patchset")
	}
	if x.WIP != nil && *x.WIP == c.WIP {
		return boolWord(*x.WIP, "it is work in progress", "it is not work in progress")
	}
	for _, a := range x.Approval {
		if hasApproval(c, a) {
			return "it has " + describeApproval(a)
		}
	}
	return ""
}

func boolWord(b bool, ifTrue, ifFalse string) string {
	if b {
		return ifTrue
	}
	return ifFalse
}
