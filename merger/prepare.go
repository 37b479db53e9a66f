package merger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// plan is the work of one project of a buildset.
type plan struct {
	project string
	labels  []string // branches, in order of first appearance
	primary string   // branch of the project's last change
	steps   []step   // the project's changes, in list order
	// skip is how many of steps the base already covers (a prefix, since
	// the base's list is a prefix of the whole list), and start the base's
	// states to continue from.
	skip  int
	start map[string]string
}

type step struct {
	idx   int // in the whole list
	spec  pipeline.Spec
	label string
}

// projectResult is what one project contributes to a buildset.
type projectResult struct {
	project    string
	states     map[string]string // label → speculative commit
	conflict   *pipeline.Conflict
	conflictAt int
	err        error
	refs       []string // refs written
}

func makePlans(changes []pipeline.Spec, rec *record) []*plan {
	var plans []*plan
	byProject := map[string]*plan{}
	covered := 0
	if rec != nil {
		covered = len(rec.changes)
	}
	for i, s := range changes {
		p := byProject[s.Project]
		if p == nil {
			p = &plan{project: s.Project, start: map[string]string{}}
			byProject[s.Project] = p
			plans = append(plans, p)
		}
		l := label(s)
		if !contains(p.labels, l) {
			p.labels = append(p.labels, l)
		}
		p.primary = l
		p.steps = append(p.steps, step{idx: i, spec: s, label: l})
		if i < covered {
			p.skip++
			p.start[l] = rec.states[pbKey{s.Project, l}]
		}
	}
	for _, p := range plans {
		for _, id := range p.start {
			if id == "" {
				p.skip, p.start = 0, map[string]string{}
				break
			}
		}
	}
	return plans
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m *Merger) prepareProject(ctx context.Context, buildset string, p *plan) projectResult {
	pr := projectResult{project: p.project}
	pol := Policy{}
	if m.cfg.Policy != nil {
		var err error
		if pol, err = m.cfg.Policy(ctx, p.project); err != nil {
			pr.err = fmt.Errorf("submit type of %s: %w", p.project, err)
			return pr
		}
	}
	typ, err := pol.submitType()
	if err != nil {
		pr.err = fmt.Errorf("%s: %w", p.project, err)
		return pr
	}
	pr.err = m.withRepo(ctx, p.project, func(r *repo) error {
		st := &stepper{m: m, r: r, pol: pol, typ: typ, trees: map[string]string{}}
		states, cf, at, err := m.replay(ctx, st, p)
		if err != nil || cf != nil {
			pr.conflict, pr.conflictAt = cf, at
			return err
		}
		pr.states = states
		refs := map[string]string{primaryRef(buildset): states[p.primary]}
		if len(p.labels) > 1 {
			for _, l := range p.labels {
				refs[branchRef(buildset, l)] = states[l]
			}
		}
		var b strings.Builder
		for ref, id := range refs {
			fmt.Fprintf(&b, "update %s %s\n", ref, id)
			pr.refs = append(pr.refs, ref)
		}
		r.dirty = true
		_, err = m.git.exec(ctx, opts{dir: r.dir, stdin: []byte(b.String())}, "update-ref", "--stdin")
		return err
	})
	if pr.err != nil {
		pr.err = fmt.Errorf("%s: %w", p.project, pr.err)
	}
	return pr
}

// replay resolves the project's commits (fetching what the mirror lacks)
// and moves each branch by the changes not covered by the base.
func (m *Merger) replay(ctx context.Context, st *stepper, p *plan) (map[string]string, *pipeline.Conflict, int, error) {
	r := st.r
	commits, tips, err := m.resolve(ctx, r, p)
	if err != nil {
		return nil, nil, 0, err
	}
	states := map[string]string{}
	for l, id := range p.start {
		states[l] = id
	}
	for l, id := range tips {
		states[l] = id
	}
	for i, s := range p.steps[p.skip:] {
		next, cf, err := st.apply(ctx, states[s.label], s.spec, commits[p.skip+i])
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%s: %w", s.spec, err)
		}
		if cf != nil {
			return nil, cf, s.idx, nil
		}
		states[s.label] = next
	}
	return states, nil, 0, nil
}

// resolve reads the commits of the project's changes and the branch tips
// it starts from. Branch tips are always fetched fresh; change refs only
// when the mirror lacks their commit. A base state the mirror lost (it was
// re-cloned) makes the project start over from fresh tips.
func (m *Merger) resolve(ctx context.Context, r *repo, p *plan) ([]*commit, map[string]string, error) {
	changeName := func(s pipeline.Spec) string {
		if s.Commit != "" {
			return s.Commit
		}
		return s.Ref
	}
	var names []string
	for _, s := range p.steps {
		names = append(names, changeName(s.spec)+"^{commit}")
	}
	for _, l := range p.labels {
		if id := p.start[l]; id != "" {
			names = append(names, id+"^{commit}")
		}
	}
	objs, err := m.git.catFile(ctx, r.dir, names)
	if err != nil {
		return nil, nil, err
	}
	for _, o := range objs[len(p.steps):] {
		if o.id == "" {
			m.log.Info("merger: base state missing from mirror, starting over", "project", r.project, "commit", o.name)
			p.skip, p.start = 0, map[string]string{}
			break
		}
	}
	// Branches whose first change needs a tip to stand on.
	needTip := map[string]bool{}
	var fetch, tipLabels []string
	for _, s := range p.steps {
		if _, seen := needTip[s.label]; seen {
			continue
		}
		needTip[s.label] = s.spec.Number != 0 && p.start[s.label] == ""
		if needTip[s.label] {
			tipLabels = append(tipLabels, s.label)
			fetch = append(fetch, "refs/heads/"+s.label)
		}
	}
	for i, s := range p.steps {
		if objs[i].id == "" && s.spec.Ref != "" {
			fetch = append(fetch, s.spec.Ref)
		}
	}
	if len(fetch) > 0 {
		if err := m.fetch(ctx, r, fetch); err != nil {
			return nil, nil, err
		}
		names = names[:len(p.steps)]
		for _, l := range tipLabels {
			names = append(names, "refs/heads/"+l+"^{commit}")
		}
		if objs, err = m.git.catFile(ctx, r.dir, names); err != nil {
			return nil, nil, err
		}
	}
	commits := make([]*commit, len(p.steps))
	for i, s := range p.steps {
		o := objs[i]
		if o.id == "" {
			return nil, nil, fmt.Errorf("%s: commit %s not found in %s (ref %s)", s.spec, s.spec.Commit, r.project, s.spec.Ref)
		}
		if commits[i], err = parseCommit(o.id, o.content); err != nil {
			return nil, nil, err
		}
	}
	tips := map[string]string{}
	if len(fetch) > 0 {
		for i, l := range tipLabels {
			o := objs[len(p.steps)+i]
			if o.id == "" {
				return nil, nil, fmt.Errorf("branch %s of %s not found", l, r.project)
			}
			tips[l] = o.id
		}
	}
	return commits, tips, nil
}

// deleteRefs undoes the refs a failed or released Prepare wrote.
func (m *Merger) deleteRefs(ctx context.Context, buildset string, results []projectResult) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, pr := range results {
		if len(pr.refs) == 0 {
			continue
		}
		if err := m.removeRefs(ctx, pr.project, pr.refs); err != nil {
			m.log.Warn("merger: could not delete refs", "buildset", buildset, "project", pr.project, "err", err)
		}
	}
}

// removeRefs deletes refs of project in one transaction.
func (m *Merger) removeRefs(ctx context.Context, project string, refs []string) error {
	if len(refs) == 0 {
		return nil
	}
	return m.withMirror(ctx, project, func(r *repo) error {
		var b strings.Builder
		for _, ref := range refs {
			fmt.Fprintf(&b, "delete %s\n", ref)
		}
		r.dirty = true
		_, err := m.git.exec(ctx, opts{dir: r.dir, stdin: []byte(b.String())}, "update-ref", "--stdin")
		return err
	})
}
