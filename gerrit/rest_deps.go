package gerrit

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	gogerrit "github.com/andygrunwald/go-gerrit"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Depends-On, both ways: resolving a change's footers to the changes they
// name, and finding the open changes whose footers name it.

// resolveDependsOn resolves ch's Depends-On footers in order. A footer
// that names no change of this Gerrit goes to unresolved with the reason.
func (c *Client) resolveDependsOn(ctx context.Context, ch *pipeline.Change, deps []pipeline.DependsOn) (needs []pipeline.Need, unresolved []string, err error) {
	var byID map[string][]gogerrit.ChangeInfo
	for _, d := range deps {
		var found []gogerrit.ChangeInfo
		why := "no such change"
		switch d.Kind {
		case pipeline.DependsOnURL, pipeline.DependsOnNumber:
			if d.Kind == pipeline.DependsOnURL && !c.ownHost(d.Host) {
				unresolved = append(unresolved, d.Raw+" (another Gerrit)")
				continue
			}
			id := strconv.Itoa(d.Number)
			if d.Project != "" {
				id = url.PathEscape(d.Project) + "~" + id
			}
			var ci gogerrit.ChangeInfo
			if err := c.do(ctx, "GET", "changes/"+id, nil, &ci); err != nil {
				if !errors.Is(err, ErrNotFound) {
					return nil, nil, err
				}
			} else {
				found = append(found, ci)
			}
		case pipeline.DependsOnChangeID:
			if byID == nil {
				byID = map[string][]gogerrit.ChangeInfo{}
			}
			cands, ok := byID[d.ChangeID]
			if !ok {
				if cands, err = c.query(ctx, "change:"+d.ChangeID, nil); err != nil {
					return nil, nil, err
				}
				byID[d.ChangeID] = cands
			}
			found = pickByChangeID(cands, ch.Project, ch.Branch, ch.Key())
			if len(found) == 0 && len(cands) > 1 {
				why = "ambiguous: " + strconv.Itoa(len(cands)) + " changes on other branches"
			}
		}
		if len(found) == 0 {
			unresolved = append(unresolved, d.Raw+" ("+why+")")
			continue
		}
		for _, ci := range found {
			k := pipeline.ChangeKey{Project: ci.Project, Number: ci.Number}
			if k == ch.Key() || slices.ContainsFunc(needs, func(n pipeline.Need) bool { return n.Change == k }) {
				continue
			}
			needs = append(needs, pipeline.Need{Change: k, Merged: restStatus(ci.Status) == pipeline.StatusMerged})
		}
	}
	return needs, unresolved, nil
}

// pickByChangeID chooses among the changes sharing a legacy Change-Id the
// ones a footer of a change of project and branch means: the one of the
// same project and branch; else those of the same branch (Zuul v2's
// cross-repo changes sharing one Change-Id); else the only one there is.
// Several on other branches are ambiguous: none.
func pickByChangeID(cands []gogerrit.ChangeInfo, project, branch string, self pipeline.ChangeKey) []gogerrit.ChangeInfo {
	var same, sameBranch, rest []gogerrit.ChangeInfo
	for _, ci := range cands {
		b := strings.TrimPrefix(ci.Branch, "refs/heads/")
		switch {
		case ci.Project == self.Project && ci.Number == self.Number:
		case ci.Project == project && b == branch:
			same = append(same, ci)
		case b == branch:
			sameBranch = append(sameBranch, ci)
		default:
			rest = append(rest, ci)
		}
	}
	switch {
	case len(same) > 0:
		return same
	case len(sameBranch) > 0:
		return sameBranch
	case len(rest) == 1:
		return rest
	}
	return nil
}

// ownHost reports whether a Depends-On URL's host is this Gerrit's.
func (c *Client) ownHost(host string) bool {
	base := c.gc.BaseURL()
	for _, h := range []string{c.web.Host, base.Host} {
		if strings.EqualFold(host, h) || strings.EqualFold(hostname(host), hostname(h)) {
			return true
		}
	}
	return false
}

func hostname(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// dependents returns the open changes whose Depends-On footers resolve to
// ch, found by a message: query for its Change-Id and URL.
func (c *Client) dependents(ctx context.Context, ch *pipeline.Change) ([]pipeline.ChangeKey, error) {
	terms := []string{"message:" + strconv.Quote(c.changeURL(ch.Key()))}
	if ch.ChangeID != "" {
		terms = append(terms, "message:"+ch.ChangeID)
	}
	q := "status:open (" + strings.Join(terms, " OR ") + ")"
	cands, err := c.query(ctx, q, commitOptions)
	if err != nil {
		return nil, err
	}
	var out []pipeline.ChangeKey
	var sharing []gogerrit.ChangeInfo // changes with ch's Change-Id, queried once
	for i := range cands {
		ci := &cands[i]
		k := pipeline.ChangeKey{Project: ci.Project, Number: ci.Number}
		if k == ch.Key() || !isOpen(restStatus(ci.Status)) {
			continue
		}
		rev, ok := ci.Revisions[ci.CurrentRevision]
		if !ok {
			continue
		}
		for _, d := range pipeline.ParseDependsOn(rev.Commit.Message) {
			match := false
			switch d.Kind {
			case pipeline.DependsOnURL:
				match = d.Number == ch.Number && (d.Project == "" || d.Project == ch.Project) && c.ownHost(d.Host)
			case pipeline.DependsOnNumber:
				match = d.Number == ch.Number
			case pipeline.DependsOnChangeID:
				if d.ChangeID != ch.ChangeID {
					break
				}
				if sharing == nil {
					if sharing, err = c.query(ctx, "change:"+ch.ChangeID, nil); err != nil {
						return nil, err
					}
				}
				picked := pickByChangeID(sharing, ci.Project, strings.TrimPrefix(ci.Branch, "refs/heads/"), k)
				match = slices.ContainsFunc(picked, func(p gogerrit.ChangeInfo) bool {
					return p.Project == ch.Project && p.Number == ch.Number
				})
			}
			if match {
				out = append(out, k)
				break
			}
		}
	}
	return out, nil
}
