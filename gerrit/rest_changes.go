package gerrit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	gogerrit "github.com/andygrunwald/go-gerrit"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Query options (o=). DETAILED_LABELS gives every vote with its account,
// DETAILED_ACCOUNTS the usernames; LABELS is implied by it but asked for
// too, as some servers and plugins only look for it.
var (
	detailOptions = []string{"CURRENT_REVISION", "CURRENT_COMMIT", "LABELS", "DETAILED_LABELS", "DETAILED_ACCOUNTS", "SUBMITTABLE"}
	listOptions   = []string{"CURRENT_REVISION", "LABELS", "DETAILED_LABELS", "DETAILED_ACCOUNTS"}
	commitOptions = []string{"CURRENT_REVISION", "CURRENT_COMMIT"}
)

// maxQueryPages stops a paged query that never ends.
const maxQueryPages = 1000

// pageOverlap is how many changes of the previous page the next one asks
// for again: results are sorted by update time, and a change that leaves
// the result set between two pages would otherwise shift an unseen change
// into the page already read.
const pageOverlap = 5

// ChangeDetail is a change as its detail shows it.
type ChangeDetail struct {
	// Change has everything but Needs, NeededBy and Unresolved.
	Change pipeline.Change
	// Parents are the current patchset's parent commits.
	Parents []string
	// Message is the current patchset's commit message.
	Message string
	// Submittable is Gerrit's verdict: submit rules and requirements met.
	Submittable bool
}

// RelatedChange is one entry of a change's relation chain.
type RelatedChange struct {
	Change   pipeline.ChangeKey
	ChangeID string
	// Patchset is the patchset in the chain, CurrentPatchset the newest.
	Patchset, CurrentPatchset int
	Commit                    string
	Parents                   []string
	Status                    pipeline.Status
}

// Detail returns the change's current patchset (number, ref, commit,
// parents, message), status, wip, private, owner, votes and submittable.
func (c *Client) Detail(ctx context.Context, key pipeline.ChangeKey) (*ChangeDetail, error) {
	id := strings.TrimPrefix(changePath(key), "changes/")
	var ci *gogerrit.ChangeInfo
	err := c.call(ctx, "GET "+changePath(key), func(ctx context.Context) (*gogerrit.Response, error) {
		var resp *gogerrit.Response
		var err error
		ci, resp, err = c.gc.Changes.GetChange(ctx, id, &gogerrit.ChangeOptions{AdditionalFields: detailOptions})
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	if ci.Project != key.Project || ci.Number != key.Number {
		return nil, fmt.Errorf("gerrit: asked for change %s, got %s~%d", key, ci.Project, ci.Number)
	}
	d := &ChangeDetail{Change: c.toChange(ci), Submittable: ci.Submittable}
	if rev, ok := ci.Revisions[ci.CurrentRevision]; ok {
		d.Message = rev.Commit.Message
		for _, p := range rev.Commit.Parents {
			d.Parents = append(d.Parents, p.Commit)
		}
	}
	return d, nil
}

// toChange reads what a ChangeInfo says of a change; Branch is the short
// name, Owner and approvers are usernames, as the event normaliser has them.
func (c *Client) toChange(ci *gogerrit.ChangeInfo) pipeline.Change {
	key := pipeline.ChangeKey{Project: ci.Project, Number: ci.Number}
	ch := pipeline.Change{
		Project:  ci.Project,
		Branch:   strings.TrimPrefix(ci.Branch, "refs/heads/"),
		Number:   ci.Number,
		ChangeID: ci.ChangeID,
		Subject:  ci.Subject,
		Owner:    ci.Owner.Username,
		URL:      c.changeURL(key),
		Status:   restStatus(ci.Status),
		WIP:      ci.WorkInProgress,
		Private:  ci.IsPrivate,
		Commit:   ci.CurrentRevision,
	}
	if rev, ok := ci.Revisions[ci.CurrentRevision]; ok {
		ch.Patchset, ch.Ref = rev.Number, rev.Ref
		if ch.Ref == "" && ch.Patchset > 0 {
			ch.Ref = fmt.Sprintf("refs/changes/%02d/%d/%d", ch.Number%100, ch.Number, ch.Patchset)
		}
	}
	for label, li := range ci.Labels {
		for _, a := range li.All {
			if a.Value != 0 {
				ch.Approvals = append(ch.Approvals, pipeline.Approval{Label: label, Value: a.Value, By: a.Username})
			}
		}
	}
	slices.SortFunc(ch.Approvals, func(a, b pipeline.Approval) int {
		return cmpOr(strings.Compare(a.Label, b.Label), strings.Compare(a.By, b.By), a.Value-b.Value)
	})
	return ch
}

func cmpOr(vals ...int) int {
	for _, v := range vals {
		if v != 0 {
			return v
		}
	}
	return 0
}

// restStatus maps Gerrit's status; 2.x drafts are open.
func restStatus(s string) pipeline.Status {
	s = strings.ToUpper(s)
	if s == "DRAFT" {
		return pipeline.StatusNew
	}
	return pipeline.Status(s)
}

func isOpen(s pipeline.Status) bool { return s == "" || s == pipeline.StatusNew }

// ChangeSnapshot returns the change as the core needs it, dependencies
// resolved. Needs: every parent of the current patchset that is a patchset
// (current or older) of another open change, from the related-changes
// endpoint (or, where a server lacks it, a commit: query), then the
// Depends-On footers: URLs of this Gerrit and numbers directly, legacy
// Change-Ids by a change: query that prefers the depending change's project
// and branch, then its branch; other hosts and ambiguous or unknown
// references go to Unresolved. NeededBy: open children of the current
// patchset in the relation chain, then open changes whose Depends-On names
// this change. Those are found the way Zuul v2 finds them, a message: query
// for the Change-Id, and for this change's URL, whose hits are kept only
// when their own footers resolve to this change; a bare number footer is
// not searched for. A closed change gets neither.
func (c *Client) ChangeSnapshot(ctx context.Context, key pipeline.ChangeKey) (*pipeline.Change, error) {
	d, err := c.Detail(ctx, key)
	if err != nil {
		return nil, err
	}
	ch := d.Change
	if !isOpen(ch.Status) {
		return &ch, nil
	}
	related, err := c.Related(ctx, key, ch.Commit)
	relatedOK := err == nil
	if err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Transient() {
			return nil, err
		}
		c.log.Warn("gerrit related changes unavailable; looking parents up by commit", "change", key.String(), "err", err)
	}
	seen := map[pipeline.ChangeKey]bool{key: true}
	for _, p := range d.Parents {
		rc, ok := findRelated(related, p)
		if !relatedOK {
			if rc, ok, err = c.changeByCommit(ctx, key.Project, p); err != nil {
				return nil, err
			}
		}
		if ok && isOpen(rc.Status) && !seen[rc.Change] {
			seen[rc.Change] = true
			ch.Needs = append(ch.Needs, pipeline.Need{Change: rc.Change, Patchset: rc.Patchset})
		}
	}
	needs, unresolved, err := c.resolveDependsOn(ctx, &ch, pipeline.ParseDependsOn(d.Message))
	if err != nil {
		return nil, err
	}
	for _, n := range needs {
		if !seen[n.Change] {
			seen[n.Change] = true
			ch.Needs = append(ch.Needs, n)
		}
	}
	ch.Unresolved = unresolved
	by := map[pipeline.ChangeKey]bool{key: true}
	for _, r := range related {
		if isOpen(r.Status) && slices.Contains(r.Parents, ch.Commit) && !by[r.Change] {
			by[r.Change] = true
			ch.NeededBy = append(ch.NeededBy, r.Change)
		}
	}
	dependents, err := c.dependents(ctx, &ch)
	if err != nil {
		return nil, err
	}
	for _, k := range dependents {
		if !by[k] {
			by[k] = true
			ch.NeededBy = append(ch.NeededBy, k)
		}
	}
	return &ch, nil
}

func findRelated(related []RelatedChange, commit string) (RelatedChange, bool) {
	for _, r := range related {
		if r.Commit == commit {
			return r, true
		}
	}
	return RelatedChange{}, false
}

// relatedChanges is the answer of the related-changes endpoint, decoded
// on its own: go-gerrit's CommitInfo insists on timestamps this client
// does not need, and a server that leaves one empty must not hide a chain.
type relatedChanges struct {
	Changes []struct {
		Project  string `json:"project"`
		ChangeID string `json:"change_id"`
		Commit   struct {
			Commit  string `json:"commit"`
			Parents []struct {
				Commit string `json:"commit"`
			} `json:"parents"`
		} `json:"commit"`
		ChangeNumber          int    `json:"_change_number"`
		RevisionNumber        int    `json:"_revision_number"`
		CurrentRevisionNumber int    `json:"_current_revision_number"`
		Status                string `json:"status"`
	} `json:"changes"`
}

// Related returns the relation chain of a revision ("" for the current
// one): descendants first, then ancestors, as Gerrit orders it, without
// the change itself.
func (c *Client) Related(ctx context.Context, key pipeline.ChangeKey, revision string) ([]RelatedChange, error) {
	var info relatedChanges
	if err := c.do(ctx, http.MethodGet, revisionPath(key, revision)+"/related", nil, &info); err != nil {
		return nil, err
	}
	var out []RelatedChange
	for _, r := range info.Changes {
		if r.ChangeNumber == 0 || r.ChangeNumber == key.Number {
			continue // a commit that is no change, or the change itself
		}
		project := r.Project
		if project == "" {
			project = key.Project // a relation chain never leaves its project
		}
		rc := RelatedChange{
			Change:          pipeline.ChangeKey{Project: project, Number: r.ChangeNumber},
			ChangeID:        r.ChangeID,
			Patchset:        r.RevisionNumber,
			CurrentPatchset: r.CurrentRevisionNumber,
			Commit:          r.Commit.Commit,
			Status:          restStatus(r.Status),
		}
		for _, p := range r.Commit.Parents {
			rc.Parents = append(rc.Parents, p.Commit)
		}
		out = append(out, rc)
	}
	return out, nil
}

// changeByCommit finds the change of project one of whose patchsets is
// commit, for servers without the related-changes endpoint.
func (c *Client) changeByCommit(ctx context.Context, project, commit string) (RelatedChange, bool, error) {
	cis, err := c.query(ctx, fmt.Sprintf("project:{%s} commit:%s", project, commit), []string{"ALL_REVISIONS"})
	if err != nil {
		return RelatedChange{}, false, err
	}
	for _, ci := range cis {
		if rev, ok := ci.Revisions[commit]; ok && ci.Project == project {
			return RelatedChange{
				Change:   pipeline.ChangeKey{Project: ci.Project, Number: ci.Number},
				ChangeID: ci.ChangeID, Patchset: rev.Number, Commit: commit,
				Status: restStatus(ci.Status),
			}, true, nil
		}
	}
	return RelatedChange{}, false, nil
}

// QueryOpen returns the open changes matching query (Gerrit search syntax;
// "status:open" is added), every page of them, with their current
// patchset and votes but without dependencies: ChangeSnapshot those the
// caller keeps. Used to resync after a restart or a lost stream.
func (c *Client) QueryOpen(ctx context.Context, query string) ([]pipeline.Change, error) {
	q := "status:open"
	if strings.TrimSpace(query) != "" {
		q += " (" + query + ")"
	}
	cis, err := c.query(ctx, q, listOptions)
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.Change, 0, len(cis))
	for i := range cis {
		out = append(out, c.toChange(&cis[i]))
	}
	return out, nil
}

// query runs a change query page by page (n=, S=) until the last change of
// a page no longer says _more_changes; a change seen twice is kept once.
func (c *Client) query(ctx context.Context, q string, options []string) ([]gogerrit.ChangeInfo, error) {
	var out []gogerrit.ChangeInfo
	seen := map[pipeline.ChangeKey]bool{}
	start := 0
	for range maxQueryPages {
		opt := &gogerrit.QueryChangeOptions{Skip: start}
		opt.Query = []string{q}
		opt.Limit = c.pageSize
		opt.AdditionalFields = options
		var page *[]gogerrit.ChangeInfo
		err := c.call(ctx, "GET changes/?q="+q, func(ctx context.Context) (*gogerrit.Response, error) {
			var resp *gogerrit.Response
			var err error
			page, resp, err = c.gc.Changes.QueryChanges(ctx, opt)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, ci := range *page {
			if k := (pipeline.ChangeKey{Project: ci.Project, Number: ci.Number}); !seen[k] {
				seen[k] = true
				out = append(out, ci)
			}
		}
		n := len(*page)
		if n == 0 || !(*page)[n-1].MoreChanges {
			return out, nil
		}
		start += max(1, n-min(pageOverlap, n/2))
	}
	return nil, fmt.Errorf("gerrit: query %q: more than %d pages", q, maxQueryPages)
}
