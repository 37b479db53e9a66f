package pipeline

// The fake shell of the harness: what the scheduler and the adapters will
// do with each action, reduced to recording it and answering at once.

func (h *harness) handle(a Action) {
	h.actions = append(h.actions, a)
	switch a.Kind {
	case ActPrepare:
		if h.holdMerges {
			h.heldPrepares = append(h.heldPrepares, a)
			return
		}
		h.queue = append(h.queue, Event{Merge: h.mergeFor(a)})
	case ActBuild:
		h.builds = append(h.builds, &buildRec{act: a})
	case ActCancel:
		h.cancels = append(h.cancels, h.label(a))
		for _, b := range h.builds {
			if b.act.BuildSet == a.BuildSet {
				b.finished = true
			}
		}
	case ActReport:
		h.reports = append(h.reports, a)
		if a.Report.Submit && h.handleSubmit != nil {
			h.handleSubmit(a)
			return
		}
		if a.Report.Submit {
			status := ReportOK
			if _, ok := h.refuseSubmit[a.Change.Key()]; ok {
				status = ReportRefused
			}
			h.answerSubmit(a, status)
		}
	case ActNotice:
		h.notices = append(h.notices, a.Reason)
	}
}

// answerSubmit plays Gerrit answering a submit: a refusal with its message,
// or a merge (followed by Gerrit's change-merged event when mergedEvents).
func (h *harness) answerSubmit(a Action, status ReportStatus) {
	k := a.Change.Key()
	res := &ReportResult{ActionID: a.ID, BuildSet: a.BuildSet, Status: status}
	if status == ReportRefused {
		res.Message = h.refuseSubmit[k]
		h.queue = append(h.queue, Event{Report: res})
		return
	}
	c := h.changes[k]
	if c.Status != StatusMerged {
		c.Status = StatusMerged
		h.merged = append(h.merged, h.names[k])
		h.mergeLog = append(h.mergeLog, mergeRec{queue: a.Queue, key: k})
	}
	h.queue = append(h.queue, Event{Report: res})
	if h.mergedEvents {
		snap := *c
		h.queue = append(h.queue, Event{Trigger: &TriggerEvent{Type: "change-merged", Project: c.Project,
			Branch: c.Branch, Change: &snap, Patchset: c.Patchset, Account: "seakeeper"}})
	}
}

func (h *harness) mergeFor(a Action) *MergeResult {
	if h.mergeErrors > 0 {
		h.mergeErrors--
		return &MergeResult{BuildSet: a.BuildSet, Error: "fetch failed: connection reset"}
	}
	for _, s := range a.Changes {
		if h.conflicts[s.Key()] {
			return &MergeResult{BuildSet: a.BuildSet, Conflict: &Conflict{Change: s.Key(), Files: []string{"README"}}}
		}
	}
	var commits []ProjectCommit
	seen := map[string]bool{}
	for _, s := range a.Changes {
		if !seen[s.Project] {
			seen[s.Project] = true
			commits = append(commits, ProjectCommit{Project: s.Project, Branch: s.Branch, Commit: "spec-" + a.BuildSet})
		}
	}
	return &MergeResult{BuildSet: a.BuildSet, Commits: commits}
}
