package scheduler

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// reviewAttempts bounds the posts of one review Gerrit gave no verdict on.
const reviewAttempts = 3

// dispatch carries out committed actions, each in a goroutine of its own:
// builds wait for a slot in the build adapter, the others for one of the
// Workers. An action already under way (same ID) is not started twice.
func (s *Scheduler) dispatch(acts []pipeline.Action) {
	s.mu.Lock()
	ctx := s.workCtx
	s.mu.Unlock()
	for _, a := range acts {
		if a.Kind == pipeline.ActNotice || s.inflight[a.ID] {
			continue
		}
		s.inflight[a.ID] = true
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			if a.Kind != pipeline.ActBuild {
				select {
				case s.sem <- struct{}{}:
					defer func() { <-s.sem }()
				case <-ctx.Done():
					return
				}
			}
			if s.carryOut(ctx, a) {
				s.finish(a.ID)
			}
		}()
	}
}

// carryOut does one action and appends its result, if it has one, to the
// inbox. It returns true when the action may leave the outbox.
func (s *Scheduler) carryOut(ctx context.Context, a pipeline.Action) bool {
	switch a.Kind {
	case pipeline.ActPrepare:
		res := s.o.Merger.Prepare(ctx, a.BuildSet, a.Changes, a.Base)
		if ctx.Err() != nil {
			return false
		}
		if res.Error != "" {
			s.log.Warn("prepare failed", actionAttrs(a, "err", res.Error)...)
		}
		return s.result(a, pipeline.Event{Merge: &res})
	case pipeline.ActBuild:
		if err := s.o.Builds.Submit(ctx, a); err != nil {
			if ctx.Err() != nil {
				return false
			}
			s.log.Error("build refused", actionAttrs(a, "err", err)...)
		}
		return true
	case pipeline.ActCancel:
		if err := s.o.Builds.Cancel(ctx, a.BuildSet); err != nil {
			s.log.Warn("cancel not sent", actionAttrs(a, "err", err)...)
			return ctx.Err() == nil
		}
		return true
	case pipeline.ActReport:
		return s.report(ctx, a)
	}
	s.log.Warn("unknown action", actionAttrs(a)...)
	return true
}

// result appends the result of action a to the inbox.
func (s *Scheduler) result(a pipeline.Action, ev pipeline.Event) bool {
	ev.Time = s.o.Clock.Now()
	if _, err := s.o.Store.AppendInbox(ev); err != nil {
		s.log.Error("result not saved; the action is redone on the next start", actionAttrs(a, "err", err)...)
		return false
	}
	return true
}

// report posts a review and, for a submit report, submits the tested
// revision; only the latter has a result (pipeline.ReportResult).
func (s *Scheduler) report(ctx context.Context, a pipeline.Action) bool {
	r := a.Report
	if r == nil {
		s.log.Warn("report action without a report", actionAttrs(a)...)
		return true
	}
	key, rev := a.Change.Key(), a.Change.Commit
	in := gerrit.ReviewInput{Labels: r.Labels, Message: s.reportMessage(a), Tag: r.Tag}
	var err error
	for attempt := range reviewAttempts {
		if err = s.o.Gerrit.Review(ctx, key, rev, in); err == nil || !gerrit.IsTransient(err) || ctx.Err() != nil {
			break
		}
		if attempt+1 < reviewAttempts && !s.sleep(ctx, s.o.RetryBackoff<<attempt) {
			break
		}
	}
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		s.log.Error("review not posted", actionAttrs(a, "outcome", string(r.Outcome), "err", err)...)
	} else {
		s.log.Info("reported", actionAttrs(a, "outcome", string(r.Outcome))...)
	}
	if !r.Submit {
		return true
	}
	res, ok := s.submit(ctx, a)
	if !ok {
		return false
	}
	s.log.Info("submit", actionAttrs(a, "status", string(res.Status), "message", res.Message)...)
	return s.result(a, pipeline.Event{Report: &res})
}

// reportMessage is the report's message with the status page link.
func (s *Scheduler) reportMessage(a pipeline.Action) string {
	msg := a.Report.Message
	if s.o.StatusURL != "" && a.Item != "" {
		link := strings.TrimRight(s.o.StatusURL, "/") + "/#" + a.Item
		if msg != "" {
			msg += "\n\n"
		}
		msg += "Status: " + link
	}
	return msg
}

// submit submits the tested revision, retrying while Gerrit gives no
// verdict, and says what became of it; false means ctx ended first.
func (s *Scheduler) submit(ctx context.Context, a pipeline.Action) (pipeline.ReportResult, bool) {
	res := pipeline.ReportResult{ActionID: a.ID, BuildSet: a.BuildSet, Status: pipeline.ReportOK}
	key, rev := a.Change.Key(), a.Change.Commit
	for attempt := 0; ; attempt++ {
		err := s.o.Gerrit.Submit(ctx, key, rev)
		if err == nil {
			return res, true
		}
		if ctx.Err() != nil {
			return res, false
		}
		var se *gerrit.SubmitError
		transient := gerrit.IsTransient(err)
		msg := err.Error()
		if errors.As(err, &se) {
			transient = se.Kind == gerrit.SubmitTransient
			if se.Message != "" {
				msg = se.Message
			}
			if se.Kind == gerrit.SubmitAlreadyMerged {
				res.Status = pipeline.ReportAlreadyMerged
				return res, true
			}
		}
		if transient && attempt < s.o.SubmitRetries {
			s.log.Warn("submit: no verdict from Gerrit; retrying", actionAttrs(a, "attempt", attempt+1, "err", err)...)
			if !s.sleep(ctx, s.o.RetryBackoff<<attempt) {
				return res, false
			}
			continue
		}
		res.Status, res.Message = pipeline.ReportRefused, msg
		return res, true
	}
}

// sleep waits d on the clock; false means ctx ended first.
func (s *Scheduler) sleep(ctx context.Context, d time.Duration) bool {
	t := s.o.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}
