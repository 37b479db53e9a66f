package gerrittest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// ReviewSpec is a review for the Go API: votes, a message, a tag.
type ReviewSpec struct {
	Labels  map[string]int
	Message string
	Tag     string
	// Patchset to review; 0 is the current one.
	Patchset int
}

// Approve votes value on label as user on the current patchset, as POST
// .../review does, publishing comment-added ("Patch Set N: Label+V").
func (s *Server) Approve(project string, number int, label string, value int, user string) error {
	return s.Review(project, number, user, ReviewSpec{Labels: map[string]int{label: value}})
}

// Comment posts a message ("recheck") as user, publishing comment-added
// ("Patch Set N:\n\nrecheck").
func (s *Server) Comment(project string, number int, user, msg string) error {
	return s.Review(project, number, user, ReviewSpec{Message: msg})
}

// Review posts a review as user with strict labels, as REST does.
func (s *Server) Review(project string, number int, user string, r ReviewSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.changeLocked(project, number)
	if err != nil {
		return err
	}
	ps := c.current()
	if r.Patchset != 0 {
		if ps, err = findRevision(c, fmt.Sprint(r.Patchset)); err != nil {
			return err
		}
	}
	_, err = s.reviewLocked(c, ps, s.addAccount(user, "", ""), reviewInput{Labels: r.Labels, Message: r.Message, Tag: r.Tag})
	return err
}

// reviewLocked validates and records a review. Votes on an outdated
// patchset are recorded on it (and do not count for the current one).
func (s *Server) reviewLocked(c *change, ps *patchset, who *account, in reviewInput) (map[string]int, error) {
	p := c.project
	strict := in.StrictLabels == nil || *in.StrictLabels
	if len(in.Labels) > 0 && c.status == statusAbandoned {
		return nil, errf(http.StatusConflict, "change is closed")
	}
	names := make([]string, 0, len(in.Labels))
	for n := range in.Labels {
		names = append(names, n)
	}
	sort.Strings(names)
	applied := map[string]int{}
	for _, name := range names {
		v := in.Labels[name]
		l, ok := p.label(name)
		if !ok {
			if strict {
				return nil, errf(http.StatusBadRequest, "label \"%s\" is not a configured label", name)
			}
			continue
		}
		if v < l.Min || v > l.Max {
			if strict {
				return nil, errf(http.StatusBadRequest, "label \"%s\": %d is not a valid value", name, v)
			}
			continue
		}
		if rng, ok := p.permitted(l, who.Username); v != 0 && (!ok || !rng.contains(v)) {
			if strict {
				return nil, errf(http.StatusForbidden, "Applying label \"%s\": %d is restricted", name, v)
			}
			if !ok {
				continue
			}
			v = max(rng.min, min(rng.max, v))
		}
		applied[l.Name] = v
	}
	if c.status == statusMerged {
		var reduced []string
		for name, v := range applied {
			if old := ps.vote(name, who); old != nil && v < old.value {
				reduced = append(reduced, name)
			}
		}
		if len(reduced) > 0 {
			sort.Strings(reduced)
			return nil, errf(http.StatusConflict, "Cannot reduce vote on labels for closed change: %s", strings.Join(reduced, ", "))
		}
	}
	now := s.now()
	text := fmt.Sprintf("Patch Set %d:", ps.number)
	old := map[string]int{}
	for _, l := range p.labels {
		v, ok := applied[l.Name]
		if !ok {
			continue
		}
		cur := ps.vote(l.Name, who)
		if cur == nil && v == 0 || cur != nil && cur.value == v {
			continue
		}
		if cur == nil {
			cur = &vote{label: l.Name, by: who}
			ps.votes = append(ps.votes, cur)
			old[l.Name] = 0
		} else {
			old[l.Name] = cur.value
		}
		cur.value, cur.date, cur.tag = v, now, in.Tag
		if v == 0 {
			text += " -" + l.Name
		} else {
			text += " " + l.Name + formatValue(v)
		}
	}
	if msg := strings.TrimSpace(in.Message); msg != "" {
		text += "\n\n" + msg
	} else if len(old) == 0 {
		return applied, s.readyLocked(c, who, in)
	}
	c.addReviewer(who)
	s.addMessageLocked(c, who, text, in.Tag, ps.number)
	ev := s.changeEvent(gerrit.TypeCommentAdded, c, ps)
	ev.Author, ev.Comment = accountAttr(who), text
	for _, l := range p.labels {
		if _, ok := p.permitted(l, who.Username); !ok {
			continue
		}
		a := gerrit.Approval{Type: l.Name, Description: l.Name}
		if v := ps.vote(l.Name, who); v != nil {
			a.Value, a.GrantedOn = gerrit.FlexInt(v.value), gerrit.FlexInt(v.date.Unix())
		}
		if o, ok := old[l.Name]; ok {
			ov := gerrit.FlexInt(o)
			a.OldValue = &ov
		}
		ev.Approvals = append(ev.Approvals, a)
	}
	s.emit(ev)
	return applied, s.readyLocked(c, who, in)
}

// readyLocked applies ReviewInput's ready / work_in_progress.
func (s *Server) readyLocked(c *change, who *account, in reviewInput) error {
	switch {
	case in.Ready && c.wip:
		return s.setWIPLocked(c, who, false)
	case in.WorkInProgress && !c.wip:
		return s.setWIPLocked(c, who, true)
	}
	return nil
}
