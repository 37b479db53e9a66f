package gerrittest

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Gerrit's JSON entities, with Gerrit's field names.
type (
	changeInfo struct {
		ID                     string                    `json:"id"`
		TripletID              string                    `json:"triplet_id"`
		Project                string                    `json:"project"`
		Branch                 string                    `json:"branch"`
		Topic                  string                    `json:"topic,omitempty"`
		Hashtags               []string                  `json:"hashtags"`
		ChangeID               string                    `json:"change_id"`
		Subject                string                    `json:"subject"`
		Status                 string                    `json:"status"`
		Created                string                    `json:"created"`
		Updated                string                    `json:"updated"`
		Submitted              string                    `json:"submitted,omitempty"`
		Submitter              *accountInfo              `json:"submitter,omitempty"`
		SubmitType             string                    `json:"submit_type,omitempty"`
		Submittable            *bool                     `json:"submittable,omitempty"`
		Insertions             int                       `json:"insertions"`
		Deletions              int                       `json:"deletions"`
		TotalCommentCount      int                       `json:"total_comment_count"`
		UnresolvedCommentCount int                       `json:"unresolved_comment_count"`
		HasReviewStarted       bool                      `json:"has_review_started"`
		Number                 int                       `json:"_number"`
		Owner                  *accountInfo              `json:"owner"`
		Labels                 map[string]*labelInfo     `json:"labels,omitempty"`
		PermittedLabels        map[string][]string       `json:"permitted_labels,omitempty"`
		RemovableReviewers     []*accountInfo            `json:"removable_reviewers,omitempty"`
		Reviewers              map[string][]*accountInfo `json:"reviewers,omitempty"`
		Messages               []messageInfo             `json:"messages,omitempty"`
		CurrentRevision        string                    `json:"current_revision,omitempty"`
		Revisions              map[string]*revisionInfo  `json:"revisions,omitempty"`
		SubmitRecords          []submitRecordInfo        `json:"submit_records,omitempty"`
		IsPrivate              bool                      `json:"is_private,omitempty"`
		WorkInProgress         bool                      `json:"work_in_progress,omitempty"`
		MoreChanges            bool                      `json:"_more_changes,omitempty"`
	}
	labelInfo struct {
		Optional     bool              `json:"optional,omitempty"`
		Approved     *accountInfo      `json:"approved,omitempty"`
		Rejected     *accountInfo      `json:"rejected,omitempty"`
		Recommended  *accountInfo      `json:"recommended,omitempty"`
		Disliked     *accountInfo      `json:"disliked,omitempty"`
		Blocking     bool              `json:"blocking,omitempty"`
		Value        int               `json:"value,omitempty"`
		DefaultValue *int              `json:"default_value,omitempty"`
		All          []approvalInfo    `json:"all,omitempty"`
		Values       map[string]string `json:"values,omitempty"`
	}
	approvalInfo struct {
		accountInfo
		Value                int        `json:"value"`
		Date                 string     `json:"date,omitempty"`
		Tag                  string     `json:"tag,omitempty"`
		PermittedVotingRange *rangeInfo `json:"permitted_voting_range,omitempty"`
	}
	rangeInfo struct {
		Min int `json:"min"`
		Max int `json:"max"`
	}
	messageInfo struct {
		ID             string       `json:"id"`
		Author         *accountInfo `json:"author,omitempty"`
		Date           string       `json:"date"`
		Message        string       `json:"message"`
		Tag            string       `json:"tag,omitempty"`
		RevisionNumber int          `json:"_revision_number,omitempty"`
	}
	revisionInfo struct {
		Kind     string               `json:"kind"`
		Number   int                  `json:"_number"`
		Created  string               `json:"created"`
		Uploader *accountInfo         `json:"uploader"`
		Ref      string               `json:"ref"`
		Fetch    map[string]fetchInfo `json:"fetch"`
		Commit   *commitInfo          `json:"commit,omitempty"`
		Files    map[string]fileInfo  `json:"files,omitempty"`
	}
	fetchInfo struct {
		URL string `json:"url"`
		Ref string `json:"ref"`
	}
	commitInfo struct {
		Commit    string       `json:"commit,omitempty"`
		Parents   []parentInfo `json:"parents"`
		Author    personInfo   `json:"author"`
		Committer *personInfo  `json:"committer,omitempty"`
		Subject   string       `json:"subject"`
		Message   string       `json:"message,omitempty"`
	}
	parentInfo struct {
		Commit  string `json:"commit"`
		Subject string `json:"subject,omitempty"`
	}
	personInfo struct {
		Name  string `json:"name"`
		Email string `json:"email"`
		Date  string `json:"date"`
		TZ    int    `json:"tz"`
	}
	fileInfo struct {
		Status        string `json:"status,omitempty"`
		LinesInserted int    `json:"lines_inserted,omitempty"`
		LinesDeleted  int    `json:"lines_deleted,omitempty"`
	}
	submitRecordInfo struct {
		RuleName string            `json:"rule_name"`
		Status   string            `json:"status"`
		Labels   []submitLabelInfo `json:"labels,omitempty"`
	}
	submitLabelInfo struct {
		Label     string       `json:"label"`
		Status    string       `json:"status"`
		AppliedBy *accountInfo `json:"applied_by,omitempty"`
	}
)

// options are the o= parameters (ListChangesOption), upper-cased.
type options map[string]bool

func parseOptions(q url.Values) options {
	o := options{}
	for _, v := range q["o"] {
		o[strings.ToUpper(v)] = true
	}
	return o
}

// changeJSON renders a ChangeInfo with the requested options; caller is
// the account asking (nil when anonymous).
func (s *Server) changeJSON(c *change, o options, caller *account) *changeInfo {
	det := o["DETAILED_ACCOUNTS"]
	cur := c.current()
	ci := &changeInfo{
		ID: c.id(), TripletID: c.tripletID(), Project: c.project.name, Branch: c.branch, Topic: c.topic,
		Hashtags: []string{}, ChangeID: c.changeID, Subject: cur.subject(), Status: c.status,
		Created: gerritTime(c.created), Updated: gerritTime(c.updated), Insertions: cur.ins, Deletions: cur.del,
		HasReviewStarted: !c.wip, Number: c.number, Owner: accountJSON(c.owner, det),
		IsPrivate: c.private, WorkInProgress: c.wip,
	}
	if c.status == statusMerged {
		ci.Submitted, ci.Submitter = gerritTime(c.submitted), accountJSON(c.submitter, det)
	} else {
		ci.SubmitType = string(c.project.submitType)
	}
	recs := submitRecords(c.project, cur)
	if o["SUBMITTABLE"] {
		ok := c.status == statusNew && !c.wip && submittable(recs)
		ci.Submittable = &ok
	}
	if o["LABELS"] || o["DETAILED_LABELS"] {
		s.labelsJSON(ci, c, recs, o["DETAILED_LABELS"], det, caller)
	}
	if o["MESSAGES"] {
		for _, m := range c.messages {
			ci.Messages = append(ci.Messages, messageInfo{ID: m.id, Author: accountJSON(m.author, det),
				Date: gerritTime(m.date), Message: m.text, Tag: m.tag, RevisionNumber: m.patchset})
		}
	}
	if o["SUBMIT_REQUIREMENTS"] {
		rec := submitRecordInfo{RuleName: "gerrit~DefaultSubmitRule", Status: "OK"}
		switch {
		case c.status != statusNew:
			rec.Status = "CLOSED"
		case !submittable(recs):
			rec.Status = "NOT_READY"
		}
		for _, r := range recs {
			rec.Labels = append(rec.Labels, submitLabelInfo{Label: r.label, Status: r.status, AppliedBy: accountJSON(r.by, det)})
		}
		ci.SubmitRecords = []submitRecordInfo{rec}
	}
	all := o["ALL_REVISIONS"]
	if all || o["CURRENT_REVISION"] {
		ci.CurrentRevision = cur.rev
		ci.Revisions = map[string]*revisionInfo{}
		for _, ps := range c.patchsets {
			if all || ps == cur {
				ci.Revisions[ps.rev] = s.revisionJSON(c, ps, o, ps == cur)
			}
		}
	}
	return ci
}

// labelsJSON fills labels (LABELS) and, when detailed, all votes, values,
// permitted labels and reviewers (DETAILED_LABELS).
func (s *Server) labelsJSON(ci *changeInfo, c *change, recs []labelRecord, detailed, det bool, caller *account) {
	cur := c.current()
	ci.Labels = map[string]*labelInfo{}
	for i, l := range c.project.labels {
		li := &labelInfo{Optional: recs[i].status == recMay}
		for _, v := range cur.votes {
			if v.label != l.Name {
				continue
			}
			switch {
			case v.value == l.Min && v.value < 0 && li.Rejected == nil:
				li.Rejected = accountJSON(v.by, det)
			case v.value == l.Max && v.value > 0 && li.Approved == nil:
				li.Approved = accountJSON(v.by, det)
			case v.value < 0 && li.Disliked == nil:
				li.Disliked, li.Value = accountJSON(v.by, det), v.value
			case v.value > 0 && v.value < l.Max && li.Recommended == nil:
				li.Recommended, li.Value = accountJSON(v.by, det), v.value
			}
		}
		li.Blocking = recs[i].status == recReject
		if li.Value == 1 || li.Value == -1 {
			li.Value = 0
		}
		if detailed {
			zero := 0
			li.DefaultValue = &zero
			li.Values = map[string]string{}
			for v := l.Min; v <= l.Max; v++ {
				key := formatValue(v)
				if v == 0 {
					key = " 0"
				}
				li.Values[key] = l.valueText(v)
			}
			for _, r := range c.reviewers {
				ai := approvalInfo{accountInfo: *accountJSON(r, det)}
				if rng, ok := c.project.permitted(l, r.Username); ok {
					ai.PermittedVotingRange = &rangeInfo{rng.min, rng.max}
				}
				if v := cur.vote(l.Name, r); v != nil {
					ai.Value, ai.Date, ai.Tag = v.value, gerritTime(v.date), v.tag
				}
				li.All = append(li.All, ai)
			}
		}
		ci.Labels[l.Name] = li
	}
	if !detailed {
		return
	}
	if caller != nil && c.status == statusNew {
		ci.PermittedLabels = map[string][]string{}
		for _, l := range c.project.labels {
			if rng, ok := c.project.permitted(l, caller.Username); ok {
				var vals []string
				for v := rng.min; v <= rng.max; v++ {
					if v == 0 {
						vals = append(vals, " 0")
					} else {
						vals = append(vals, formatValue(v))
					}
				}
				ci.PermittedLabels[l.Name] = vals
			}
		}
	}
	ci.Reviewers = map[string][]*accountInfo{}
	for _, r := range c.reviewers {
		ci.Reviewers["REVIEWER"] = append(ci.Reviewers["REVIEWER"], accountJSON(r, det))
		ci.RemovableReviewers = append(ci.RemovableReviewers, accountJSON(r, det))
	}
}

// revisionJSON renders a RevisionInfo.
func (s *Server) revisionJSON(c *change, ps *patchset, o options, current bool) *revisionInfo {
	ref := ps.ref(c.number)
	ri := &revisionInfo{Kind: ps.kind, Number: ps.number, Created: gerritTime(ps.created),
		Uploader: accountJSON(ps.uploader, o["DETAILED_ACCOUNTS"]), Ref: ref,
		Fetch: map[string]fetchInfo{
			"anonymous http": {URL: s.url + "/" + c.project.name, Ref: ref},
			"http":           {URL: s.url + "/a/" + c.project.name, Ref: ref},
		}}
	if o["ALL_COMMITS"] || current && o["CURRENT_COMMIT"] {
		ri.Commit = commitJSON(ps, false)
	}
	if o["ALL_FILES"] || current && o["CURRENT_FILES"] {
		ri.Files = map[string]fileInfo{"/COMMIT_MSG": {Status: "A", LinesInserted: strings.Count(ps.commit.message, "\n") + 6}}
		for path, f := range ps.files {
			fi := fileInfo{LinesInserted: f.ins, LinesDeleted: f.del}
			if f.status != "M" {
				fi.Status = f.status
			}
			ri.Files[path] = fi
		}
	}
	return ri
}

func commitJSON(ps *patchset, withSHA bool) *commitInfo {
	person := func(i ident) personInfo {
		return personInfo{Name: i.name, Email: i.email, Date: gerritTime(i.when), TZ: 0}
	}
	ci := &commitInfo{Parents: []parentInfo{}, Author: person(ps.commit.author),
		Committer: ptr(person(ps.commit.committer)), Subject: ps.subject(), Message: ps.commit.message}
	if withSHA {
		ci.Commit = ps.rev
	}
	for i, p := range ps.parents {
		ci.Parents = append(ci.Parents, parentInfo{Commit: p, Subject: ps.parentSubjects[i]})
	}
	return ci
}

// getChange answers GET /changes/{id} and /changes/{id}/detail.
func (s *Server) getChange(q *restRequest, id string, detail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, ok := s.lookup(q, id, "current")
	if !ok {
		return
	}
	o := parseOptions(q.r.URL.Query())
	if detail {
		for _, k := range []string{"LABELS", "DETAILED_LABELS", "DETAILED_ACCOUNTS", "MESSAGES", "SUBMITTABLE"} {
			o[k] = true
		}
	}
	writeJSON(q, http.StatusOK, s.changeJSON(c, o, q.who))
}

// getCommit answers GET /changes/{id}/revisions/{rev}/commit.
func (s *Server) getCommit(q *restRequest, id, rev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ps, ok := s.lookup(q, id, rev); ok {
		writeJSON(q, http.StatusOK, commitJSON(ps, true))
	}
}

// queryChanges answers GET /changes/?q=...&o=...&n=...&S=...; several q
// give a list of lists, as Gerrit does.
func (s *Server) queryChanges(q *restRequest) {
	vals := q.r.URL.Query()
	o := parseOptions(vals)
	limit, _ := strconv.Atoi(vals.Get("n"))
	start, _ := strconv.Atoi(vals.Get("S"))
	if v := vals.Get("start"); v != "" {
		start, _ = strconv.Atoi(v)
	}
	queries := vals["q"]
	if len(queries) == 0 {
		queries = []string{"status:open"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var results [][]*changeInfo
	for _, text := range queries {
		pred, err := parseQuery(text)
		if err != nil {
			writeError(q.w, err)
			return
		}
		var matched []*change
		for _, c := range s.changes {
			if (!c.private || q.who != nil) && pred(s, c, q.who) {
				matched = append(matched, c)
			}
		}
		sort.Slice(matched, func(i, j int) bool {
			a, b := matched[i], matched[j]
			if !a.updated.Equal(b.updated) {
				return a.updated.After(b.updated)
			}
			return a.number > b.number
		})
		if start > 0 {
			matched = matched[min(start, len(matched)):]
		}
		more := limit > 0 && len(matched) > limit
		if more {
			matched = matched[:limit]
		}
		out := []*changeInfo{}
		for _, c := range matched {
			out = append(out, s.changeJSON(c, o, q.who))
		}
		if more {
			out[len(out)-1].MoreChanges = true
		}
		results = append(results, out)
	}
	if len(results) == 1 {
		writeJSON(q, http.StatusOK, results[0])
		return
	}
	writeJSON(q, http.StatusOK, results)
}

func ptr[T any](v T) *T { return &v }
