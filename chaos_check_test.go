//go:build linux

package main

// The invariants a settled chaos scenario must hold, and what is printed
// when it does not.

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
)

// submitPath matches a REST submit of a change by project~number.
var submitPath = regexp.MustCompile(`/changes/[^/]*~(\d+)(/revisions/[^/]+)?/submit$`)

// mergeHistory is what gerrittest's events say about the scenario's
// branches: the order changes merged in, and every project's branch tip
// right after each merge.
type mergeHistory struct {
	order  map[int]int               // change → its position among the merges
	events map[int]int               // change → number of change-merged events
	tips   map[int]map[string]string // change → project → tip right after it merged
}

func (s *chaosScenario) mergeHistory() mergeHistory {
	h := mergeHistory{order: map[int]int{}, events: map[int]int{}, tips: map[int]map[string]string{}}
	ours := map[string]bool{}
	for _, p := range s.projects {
		ours[p] = true
	}
	tips := map[string]string{}
	for _, ev := range s.w.gerrit.Events() {
		switch {
		case ev.Type == gerrit.TypeRefUpdated && ev.RefUpdate != nil && ours[string(ev.RefUpdate.Project)] &&
			ev.RefUpdate.RefName == "refs/heads/master":
			tips[string(ev.RefUpdate.Project)] = ev.RefUpdate.NewRev
		case ev.Type == gerrit.TypeChangeMerged && ours[string(ev.Project)] && ev.Change != nil:
			n := int(ev.Change.Number)
			h.events[n]++
			if _, seen := h.order[n]; !seen {
				h.order[n] = len(h.order)
				h.tips[n] = maps.Clone(tips)
			}
		}
	}
	return h
}

// git runs git in a project's bare repository in gerrittest.
func (s *chaosScenario) git(project string, args ...string) (string, error) {
	dir := filepath.Join(s.w.gerrit.Dir(), filepath.FromSlash(project)+".git")
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w", strings.Join(args, " "), project, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// checkInvariants returns every invariant the settled scenario breaks:
//
//   - a change that fails its tests is still open with a failure report;
//     every other change is merged or, unless mustMerge, still open with
//     a failure report (the daemon may fail a change it could not test;
//     it must never merge one it did not): those are returned as notes;
//   - a merged change merged once: one commit with its Change-Id in the
//     branch history, one change-merged event, one submit that Gerrit
//     accepted (any other submit was refused); an open change has none;
//   - a merged change X has a Workflow seen Succeeded whose record says
//     it passed, whose change list ends with X (a revision of X), lists
//     before X only changes merged before X, and whose tested tree of every
//     project equals that project's branch tree right after X merged.
func (s *chaosScenario) checkInvariants(t *testing.T, mustMerge bool) (probs, notes []string) {
	t.Helper()
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	g := s.w.gerrit
	h := s.mergeHistory()

	accepted := map[int]int{}
	for _, r := range g.Requests() {
		if m := submitPath.FindStringSubmatch(r.Path); r.Method == http.MethodPost && m != nil &&
			r.Status >= 200 && r.Status < 300 {
			n, _ := strconv.Atoi(m[1])
			accepted[n]++
		}
	}
	history := map[string]string{}
	for _, p := range s.projects {
		log, err := s.git(p, "log", "--format=%B", "refs/heads/master")
		if err != nil {
			bad("%v", err)
		}
		history[p] = log
	}
	records, err := s.readRecords()
	if err != nil {
		bad("reading the workflows' records: %v", err)
	}
	trees := map[string]string{}
	treeOf := func(project, commit string) string {
		if trees[commit] == "" {
			tree, err := s.git(project, "rev-parse", commit+"^{tree}")
			if err != nil {
				bad("%v", err)
			}
			trees[commit] = tree
		}
		return trees[commit]
	}

	for _, c := range s.changes {
		ch, err := g.Change(c.project, c.number)
		if err != nil {
			bad("%s: %v", c, err)
			continue
		}
		outcome, err := s.outcome(c)
		if err != nil {
			bad("%s: %v", c, err)
		}
		merged := outcome == "merged"
		switch {
		case c.fails && merged:
			bad("%s fails its tests but was merged", c)
		case c.fails && outcome != "failed":
			bad("%s fails its tests: want it open with a failure report, it is %s", c, outcome)
		case !c.fails && !merged && (mustMerge || outcome != "failed"):
			bad("%s passes its tests but was not merged: it is %s", c, outcome)
		case !c.fails && !merged:
			notes = append(notes, fmt.Sprintf("%s passes its tests but was reported failed", c))
		}
		want := 0
		if merged {
			want = 1
		}
		if n := strings.Count(history[c.project], "Change-Id: "+ch.ChangeID+"\n"); n != want {
			bad("%s (%s): %d commits with its Change-Id in the branch history, want %d", c, outcome, n, want)
		}
		if h.events[c.number] != want {
			bad("%s (%s): %d change-merged events, want %d", c, outcome, h.events[c.number], want)
		}
		if accepted[c.number] != want {
			bad("%s (%s): Gerrit accepted %d submits, want %d", c, outcome, accepted[c.number], want)
		}
		if !merged {
			continue
		}
		if tip := h.tips[c.number][c.project]; tip != ch.MergedAs {
			bad("%s: the branch tip after its change-merged event is %s, gerrittest says it merged as %s", c, tip, ch.MergedAs)
		}
		var why []string
		if !slices.ContainsFunc(records, func(r chaosRecord) bool {
			reason := s.testedExactly(r, c, ch.Patchsets, h, treeOf)
			if reason != "" && len(r.changes) > 0 && r.changes[len(r.changes)-1].Change == c.number {
				why = append(why, fmt.Sprintf("%s (%s): %s", r.name, r.uid, reason))
			}
			return reason == ""
		}) {
			if len(why) == 0 {
				why = []string{"none"}
			}
			bad("%s merged without a passing build of exactly what merged; builds of it:\n\t%s", c, strings.Join(why, "\n\t"))
		}
	}
	probs = append(probs, s.d.logProblems()...)
	return probs, notes
}

// testedExactly returns "" when record r is a passing build of exactly the
// state change c merged as, else why not.
func (s *chaosScenario) testedExactly(r chaosRecord, c chaosChange, patchsets []gerrittest.Patchset, h mergeHistory,
	treeOf func(project, commit string) string) string {
	if len(r.changes) == 0 {
		return "empty change list"
	}
	last := r.changes[len(r.changes)-1]
	if last.Change != c.number || last.Project != c.project {
		return "its change list does not end with the change"
	}
	if !slices.ContainsFunc(patchsets, func(ps gerrittest.Patchset) bool { return ps.Revision == last.Revision }) {
		return fmt.Sprintf("it tested revision %s, not one of the change's", last.Revision)
	}
	if r.verdict != "pass" {
		return "verdict " + r.verdict
	}
	if !s.w.phases.succeeded(r.uid) {
		return "the workflow was never seen Succeeded"
	}
	for _, ahead := range r.changes[:len(r.changes)-1] {
		pos, ok := h.order[ahead.Change]
		if !ok || pos >= h.order[c.number] {
			return fmt.Sprintf("change %d ahead of it did not merge before it", ahead.Change)
		}
	}
	if _, ok := r.trees[c.project]; !ok {
		return "no tested tree of its own project"
	}
	for _, p := range slices.Sorted(maps.Keys(r.trees)) {
		tested := r.trees[p]
		tip := h.tips[c.number][p]
		if tip == "" {
			return fmt.Sprintf("%s: no branch tip known when it merged", p)
		}
		if got := treeOf(p, tip); got != tested[1] {
			return fmt.Sprintf("%s: tested tree %s (commit %s), branch tree after the merge %s (commit %s)",
				p, tested[1], tested[0], got, tip)
		}
	}
	return ""
}

// diagnose prints what it takes to understand a failed scenario: the
// seed, each change's outcome, the workflows' records, the gerrittest
// event history of the scenario's projects and the daemon's log.
func (s *chaosScenario) diagnose(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d (replay: CHAOS_SEED=%d CHAOS_RUNS=1), projects %q, daemon started %d times\n",
		s.seed, s.seed, s.projects, s.d.starts)
	for _, c := range s.changes {
		o, err := s.outcome(c)
		fmt.Fprintf(&b, "  %s: %s %v\n", c, o, orNil(err))
	}
	records, err := s.readRecords()
	fmt.Fprintf(&b, "workflow records (%v):\n", orNil(err))
	for _, r := range records {
		nums := make([]string, len(r.changes))
		for i, c := range r.changes {
			nums[i] = strconv.Itoa(c.Change)
		}
		fmt.Fprintf(&b, "  %s %s succeeded=%v verdict=%s changes=[%s] trees=%v\n",
			r.name, r.uid, s.w.phases.succeeded(r.uid), r.verdict, strings.Join(nums, " "), r.trees)
	}
	if tmps, err := filepath.Glob(filepath.Join(s.records, "*.tmp")); err == nil {
		for _, dir := range tmps {
			name, _ := os.ReadFile(filepath.Join(dir, "name"))
			errs, _ := os.ReadFile(filepath.Join(dir, "fetch.err"))
			lines := strings.Split(strings.TrimSpace(string(errs)), "\n")
			fmt.Fprintf(&b, "  incomplete record %s %s, %d fetch errors, the last ones:\n\t%s\n", strings.TrimSpace(string(name)),
				filepath.Base(dir), len(lines), strings.Join(lines[max(0, len(lines)-6):], "\n\t"))
		}
	}
	b.WriteString("gerrittest events:\n")
	ours := map[string]bool{}
	for _, p := range s.projects {
		ours[p] = true
	}
	for _, ev := range s.w.gerrit.Events() {
		switch {
		case ev.RefUpdate != nil && ours[string(ev.RefUpdate.Project)]:
			fmt.Fprintf(&b, "  %s %s %s %s→%s\n", ev.Type, ev.RefUpdate.Project, ev.RefUpdate.RefName,
				short(ev.RefUpdate.OldRev), short(ev.RefUpdate.NewRev))
		case ev.Change != nil && ours[string(ev.Project)]:
			var votes []string
			for _, a := range ev.Approvals {
				if a.OldValue != nil {
					votes = append(votes, fmt.Sprintf("%s=%d", a.Type, a.Value))
				}
			}
			ps := 0
			if ev.PatchSet != nil {
				ps = int(ev.PatchSet.Number)
			}
			fmt.Fprintf(&b, "  %s %s~%d,%d %s %s\n", ev.Type, ev.Project, ev.Change.Number, ps,
				strings.Join(votes, " "), short(ev.NewRev))
		}
	}
	t.Logf("chaos scenario failed: %s", b.String())
	t.Logf("daemon log (%s):\n%s", s.d.logPath, s.d.logText())
	argoLog := strings.Split(s.w.argoLog.String(), "\n")
	t.Logf("argolocal log, last lines:\n%s", strings.Join(argoLog[max(0, len(argoLog)-100):], "\n"))
}

func short(rev string) string { return rev[:min(len(rev), 10)] }

func orNil(err error) string {
	if err == nil {
		return ""
	}
	return "(" + err.Error() + ")"
}
