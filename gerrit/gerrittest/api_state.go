package gerrittest

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// Abandon abandons a change, publishing change-abandoned.
func (s *Server) Abandon(project string, number int, user, reason string) error {
	return s.withChange(project, number, user, func(c *change, who *account) error {
		return s.abandonLocked(c, who, reason)
	})
}

// Restore restores an abandoned change, publishing change-restored.
func (s *Server) Restore(project string, number int, user, reason string) error {
	return s.withChange(project, number, user, func(c *change, who *account) error {
		return s.restoreLocked(c, who, reason)
	})
}

// SetWIP marks a change work in progress (or ready), publishing
// wip-state-changed.
func (s *Server) SetWIP(project string, number int, user string, wip bool) error {
	return s.withChange(project, number, user, func(c *change, who *account) error {
		return s.setWIPLocked(c, who, wip)
	})
}

// SetPrivate marks a change private (or not), publishing
// private-state-changed.
func (s *Server) SetPrivate(project string, number int, user string, private bool) error {
	return s.withChange(project, number, user, func(c *change, who *account) error {
		return s.setPrivateLocked(c, who, private)
	})
}

// DeleteVote removes reviewer's vote on label from the current patchset,
// as remover, publishing vote-deleted.
func (s *Server) DeleteVote(project string, number int, label, reviewer, remover string) error {
	return s.withChange(project, number, remover, func(c *change, who *account) error {
		r := s.accounts[reviewer]
		if r == nil {
			return errf(http.StatusNotFound, "Not found: %s", reviewer)
		}
		return s.deleteVoteLocked(c, label, r, who)
	})
}

func (s *Server) withChange(project string, number int, user string, f func(*change, *account) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.changeLocked(project, number)
	if err != nil {
		return err
	}
	return f(c, s.addAccount(user, "", ""))
}

func withReason(text, reason string) string {
	if reason = strings.TrimSpace(reason); reason != "" {
		return text + "\n\n" + reason
	}
	return text
}

func (s *Server) abandonLocked(c *change, who *account, reason string) error {
	if c.status != statusNew {
		return errf(http.StatusConflict, "change is %s", strings.ToLower(c.status))
	}
	c.status = statusAbandoned
	s.addMessageLocked(c, who, withReason("Abandoned", reason), "", c.current().number)
	ev := s.changeEvent(gerrit.TypeChangeAbandoned, c, c.current())
	ev.Abandoner, ev.Reason = accountAttr(who), reason
	s.emit(ev)
	return nil
}

func (s *Server) restoreLocked(c *change, who *account, reason string) error {
	if c.status != statusAbandoned {
		return errf(http.StatusConflict, "change is %s", strings.ToLower(c.status))
	}
	c.status = statusNew
	s.addMessageLocked(c, who, withReason("Restored", reason), "", c.current().number)
	ev := s.changeEvent(gerrit.TypeChangeRestored, c, c.current())
	ev.Restorer, ev.Reason = accountAttr(who), reason
	s.emit(ev)
	return nil
}

func (s *Server) setWIPLocked(c *change, who *account, wip bool) error {
	switch {
	case c.status != statusNew:
		return errf(http.StatusConflict, "change is %s", strings.ToLower(c.status))
	case wip && c.wip:
		return errf(http.StatusConflict, "Change is already work in progress")
	case !wip && !c.wip:
		return errf(http.StatusConflict, "Change is already ready")
	}
	c.wip = wip
	text := "Set Ready For Review"
	if wip {
		text = "Set Work In Progress"
	}
	s.addMessageLocked(c, who, text, "", c.current().number)
	ev := s.changeEvent(gerrit.TypeWIPStateChanged, c, c.current())
	ev.Changer = accountAttr(who)
	s.emit(ev)
	return nil
}

func (s *Server) setPrivateLocked(c *change, who *account, private bool) error {
	if !private && !c.private {
		return errf(http.StatusConflict, "Change is not private")
	}
	if private == c.private {
		return nil
	}
	c.private = private
	text := "Unset private"
	if private {
		text = "Set private"
	}
	s.addMessageLocked(c, who, text, "", c.current().number)
	ev := s.changeEvent(gerrit.TypePrivateStateChanged, c, c.current())
	ev.Changer = accountAttr(who)
	s.emit(ev)
	return nil
}

func (s *Server) deleteVoteLocked(c *change, label string, reviewer, remover *account) error {
	ps := c.current()
	l, ok := c.project.label(label)
	var v *vote
	if ok {
		v = ps.vote(l.Name, reviewer)
	}
	if v == nil || v.value == 0 {
		return errf(http.StatusNotFound, "Not found: %s", label)
	}
	for i, x := range ps.votes {
		if x == v {
			ps.votes = append(ps.votes[:i], ps.votes[i+1:]...)
			break
		}
	}
	text := fmt.Sprintf("Removed %s%s by %s <%s>\n", l.Name, formatValue(v.value), reviewer.Name, reviewer.Email)
	s.addMessageLocked(c, remover, text, "", ps.number)
	ev := s.changeEvent(gerrit.TypeVoteDeleted, c, ps)
	ev.Reviewer, ev.Remover, ev.Comment = accountAttr(reviewer), accountAttr(remover), text
	old := gerrit.FlexInt(v.value)
	ev.Approvals = []gerrit.Approval{{Type: l.Name, Description: l.Name, Value: 0, OldValue: &old}}
	s.emit(ev)
	return nil
}
