package pipeline

// Resync helpers: after a restart, a stream reconnect or dropped-output the
// scheduler queries Gerrit for open changes and asks the core which of them
// an approval would have enqueued, had its event not been lost.

// ApprovalPipelines returns the pipelines that change c would have entered
// through one of their approval triggers: c holds every approval such a
// trigger asks for, meets the pipeline's requirements and is not yet a live
// item there. Triggers without approvals (uploads, comments) are not
// replayed: their events carry nothing the change still shows.
func (e *Engine) ApprovalPipelines(s *State, c *Change) []string {
	var out []string
	for i := range e.cfg.Pipelines {
		pc := &e.cfg.Pipelines[i]
		if pc.projRE != nil && !pc.projRE.MatchString(c.Project) {
			continue
		}
		if p := s.Pipeline(pc.Name); p != nil && p.queued(c) {
			continue
		}
		if !pc.heldApprovalTrigger(c) || pc.unmet(c, c.Patchset) != "" {
			continue
		}
		out = append(out, pc.Name)
	}
	return out
}

func (pc *PipelineConfig) heldApprovalTrigger(c *Change) bool {
	for _, t := range pc.triggers {
		if len(t.approvals) == 0 || !t.events["comment-added"] {
			continue
		}
		if t.branch != nil && !t.branch.MatchString(c.Branch) {
			continue
		}
		held := true
		for _, a := range t.approvals {
			if !hasApproval(c, a) {
				held = false
				break
			}
		}
		if held {
			return true
		}
	}
	return false
}
