package web

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// The JSON documents of the status API. Field names are a contract (see
// doc.go): add fields, never rename or remove one.
//
// The time-dependent fields (*Seconds but estimatedSeconds) are tagged
// omitzero only so that the per-turn encoding (encode.go) can leave them
// out and splice the values of the second in front: the documents served
// always carry them.

// Status is the document of GET /api/status.
type Status struct {
	// Turn is the scheduler turn the state is from; UpdatedAt when that
	// turn was committed.
	Turn      uint64    `json:"turn"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Now is the server time, in whole seconds, that the *Seconds fields
	// were computed at.
	Now time.Time `json:"now"`
	// GerritURL is Gerrit's web UI; a change's page is
	// <gerritUrl>c/<project>/+/<number>.
	GerritURL string     `json:"gerritUrl,omitempty"`
	Pipelines []Pipeline `json:"pipelines"`
}

// Pipeline is one configured pipeline and its visible queues.
type Pipeline struct {
	Name        string  `json:"name"`
	Manager     string  `json:"manager"`
	Description string  `json:"description,omitempty"`
	Queues      []Queue `json:"queues"`
}

// Queue is a queue with at least one visible item.
type Queue struct {
	Name string `json:"name"`
	// Window is a dependent queue's window (0 for other managers).
	Window int    `json:"window"`
	Items  []Item `json:"items"`
}

// Item is a queue item: a change (or ref update) under test.
type Item struct {
	ID       string `json:"id"`
	Pipeline string `json:"pipeline"`
	Queue    string `json:"queue"`
	Change   Change `json:"change"`
	// Ahead is the ID of the item this one is tested behind ("" at the
	// head); hidden items are skipped to the nearest visible one.
	Ahead string `json:"ahead,omitempty"`
	Live  bool   `json:"live"`
	// Active items are inside the window: they get merges and builds.
	Active bool `json:"active"`
	// Failing items will not merge; FailingReasons says why.
	Failing        bool     `json:"failing"`
	FailingReasons []string `json:"failingReasons,omitempty"`
	// Submitting is set while Seakeeper submits the change.
	Submitting bool      `json:"submitting"`
	EnqueuedAt time.Time `json:"enqueuedAt"`
	// EnqueuedSeconds is the item's age: now - enqueuedAt.
	EnqueuedSeconds int64 `json:"enqueuedSeconds,omitzero"`
	// Changes is the speculative change list of the current buildset,
	// own change last (empty before the item has one). Its entries are
	// short: project, number and patchset (ref for a ref update), branch
	// only when it is not the item's, no subject, owner or URL.
	Changes  []Change `json:"changes"`
	BuildSet string   `json:"buildSet,omitempty"`
	// Merge is the state of the speculative merge: "", pending, ready,
	// conflict or error.
	Merge string `json:"merge"`
	Build *Build `json:"build,omitempty"`
	// ElapsedSeconds is the time since the current buildset was made (to
	// its build's end once it finished);
	// EstimatedSeconds the estimated build time of the pipeline and
	// project; RemainingSeconds max(0, estimated - elapsed), 0 once the
	// build finished.
	ElapsedSeconds   int64 `json:"elapsedSeconds,omitzero"`
	EstimatedSeconds int64 `json:"estimatedSeconds"`
	RemainingSeconds int64 `json:"remainingSeconds,omitzero"`

	created time.Time // buildset creation, for ElapsedSeconds
	// static and buildStatic are the item's and its build's JSON without
	// the time-dependent fields (encode.go).
	static, buildStatic []byte
}

// Change identifies a change (or, with Number 0, a ref update).
type Change struct {
	Project  string `json:"project"`
	Branch   string `json:"branch,omitempty"`
	Number   int    `json:"number,omitempty"`
	Patchset int    `json:"patchset,omitempty"`
	Ref      string `json:"ref,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Owner    string `json:"owner,omitempty"`
	// URL is the change in Gerrit's web UI (the item's own change only).
	URL string `json:"url,omitempty"`
}

// Build is an item's workflow.
type Build struct {
	Phase   string `json:"phase"`
	Message string `json:"message,omitempty"`
	// URL is the workflow in the Argo UI.
	URL        string     `json:"url,omitempty"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	Cancelled  bool       `json:"cancelled"`
	Nodes      []Node     `json:"nodes"`
	// ElapsedSeconds is (finishedAt or now) - startedAt; RemainingSeconds
	// max(0, estimated - elapsed) while it runs, 0 once finished.
	ElapsedSeconds   int64 `json:"elapsedSeconds,omitzero"`
	EstimatedSeconds int64 `json:"estimatedSeconds"`
	RemainingSeconds int64 `json:"remainingSeconds,omitzero"`
}

// Node is a workflow node worth showing.
type Node struct {
	Name    string `json:"name"`
	Phase   string `json:"phase"`
	URL     string `json:"url,omitempty"`
	Message string `json:"message,omitempty"`
}

// ChangeItems is the document of GET /api/changes/<number>.
type ChangeItems struct {
	Number int       `json:"number"`
	Now    time.Time `json:"now"`
	Items  []Item    `json:"items"`
}

// apiError is the body of every API error.
type apiError struct {
	Error string `json:"error"`
}

// view is the visible part of one snapshot, built once per turn.
type view struct {
	status   Status
	byNumber map[int][]*Item
	stamped  int64 // the Unix second the durations are computed for
	// parts is the status document encoded for the turn; size about
	// the length of the whole.
	parts []part
	size  int
}

// viewConfig is what building a view needs of the configuration.
type viewConfig struct {
	cfg       *scheduler.Config
	gerritURL string
	estimate  func(pipeline, project string) time.Duration
}

// buildView turns a snapshot into the visible view: items of restricted
// projects and private changes left out, and every trace of them in what
// remains (item ahead, speculative lists, reasons).
func buildView(vc viewConfig, snap *scheduler.Snapshot) (*view, error) {
	st := snap.State
	hidden := hiddenChanges(vc.cfg, st)
	scrub := scrubber(hidden)
	v := &view{
		status:   Status{Turn: snap.Turn, UpdatedAt: snap.At.UTC(), GerritURL: vc.gerritURL, Pipelines: []Pipeline{}},
		byNumber: map[int][]*Item{},
		stamped:  -1,
	}
	for _, pc := range vc.cfg.Pipelines {
		ps := st.Pipeline(pc.Name)
		out := Pipeline{Name: pc.Name, Manager: string(pc.Manager), Description: pc.Description, Queues: []Queue{}}
		if ps != nil {
			for _, q := range ps.Queues {
				if vq, ok := vc.queue(pc.Manager, ps.Name, q, hidden, scrub); ok {
					out.Queues = append(out.Queues, vq)
				}
			}
		}
		v.status.Pipelines = append(v.status.Pipelines, out)
	}
	for pi := range v.status.Pipelines {
		for qi := range v.status.Pipelines[pi].Queues {
			items := v.status.Pipelines[pi].Queues[qi].Items
			for ii := range items {
				if n := items[ii].Change.Number; n != 0 {
					v.byNumber[n] = append(v.byNumber[n], &items[ii])
				}
			}
		}
	}
	var err error
	v.parts, v.size, err = encodeStatus(&v.status)
	return v, err
}

// hiddenSet says which changes and projects must not be shown.
type hiddenSet struct {
	projects map[string]bool
	changes  map[pipeline.ChangeKey]bool // private changes
	keys     map[pipeline.ChangeKey]bool // every hidden change item, for scrubbing
}

func (h *hiddenSet) item(it *pipeline.Item) bool {
	return h.projects[it.Change.Project] || !it.Change.IsRef() && h.changes[it.Change.Key()]
}

func (h *hiddenSet) spec(s pipeline.Spec) bool {
	return h.projects[s.Project] || s.Number != 0 && h.changes[s.Key()]
}

// hiddenChanges collects the restricted projects and the private changes
// the state mentions.
func hiddenChanges(cfg *scheduler.Config, st *pipeline.State) *hiddenSet {
	h := &hiddenSet{projects: map[string]bool{}, changes: map[pipeline.ChangeKey]bool{}, keys: map[pipeline.ChangeKey]bool{}}
	checked := map[string]bool{}
	project := func(p string) {
		if !checked[p] {
			checked[p] = true
			if cfg.Restricted(p) {
				h.projects[p] = true
			}
		}
	}
	for _, p := range st.Pipelines {
		for _, q := range p.Queues {
			for _, it := range q.Items {
				project(it.Change.Project)
				if it.Change.IsRef() {
					continue
				}
				if it.Change.Private {
					h.changes[it.Change.Key()] = true
				}
				if h.item(it) {
					h.keys[it.Change.Key()] = true
				}
				if bs := it.BuildSet; bs != nil {
					for _, s := range bs.Changes {
						project(s.Project)
					}
				}
			}
		}
	}
	return h
}

// scrubber returns a function that blanks the names of hidden projects and
// changes out of free text (reasons and messages may quote them).
func scrubber(h *hiddenSet) func(string) string {
	// Whole change keys first: the replacer tries patterns in order.
	var pairs []string
	for k := range h.keys {
		pairs = append(pairs, k.String(), "(a hidden change)")
	}
	for p := range h.projects {
		pairs = append(pairs, p, "(a restricted project)")
	}
	if len(pairs) == 0 {
		return func(s string) string { return s }
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

func (vc viewConfig) queue(m pipeline.Manager, pname string, q *pipeline.Queue, hidden *hiddenSet, scrub func(string) string) (Queue, bool) {
	out := Queue{Name: q.Name, Items: []Item{}}
	if m == pipeline.Dependent {
		out.Window = q.Window
	}
	// Ahead pointers skip hidden items: follow them to a visible one.
	visible := map[string]bool{}
	aheadOf := map[string]string{}
	for _, it := range q.Items {
		aheadOf[it.ID] = it.Ahead
		if !hidden.item(it) {
			visible[it.ID] = true
		}
	}
	for _, it := range q.Items {
		if !visible[it.ID] {
			continue
		}
		ahead := it.Ahead
		for n := 0; ahead != "" && !visible[ahead] && n <= len(q.Items); n++ {
			ahead = aheadOf[ahead]
		}
		if !visible[ahead] {
			ahead = ""
		}
		out.Items = append(out.Items, vc.item(pname, it, ahead, hidden, scrub))
	}
	if len(out.Items) == 0 {
		return out, false
	}
	// A hidden queue name (a restricted project's own queue) never shows:
	// such a queue holds only hidden items, so it was left out above.
	return out, true
}

func (vc viewConfig) item(pname string, it *pipeline.Item, ahead string, hidden *hiddenSet, scrub func(string) string) Item {
	c := &it.Change
	out := Item{
		ID: it.ID, Pipeline: pname, Queue: it.Queue, Ahead: ahead,
		Change: Change{Project: c.Project, Branch: c.Branch, Number: c.Number, Patchset: c.Patchset,
			Subject: c.Subject, Owner: c.Owner, URL: vc.changeURL(c.URL, c.Project, c.Number)},
		Live: it.Live, Active: it.Active, Failing: len(it.Failing) > 0, Submitting: it.Submitting != "",
		EnqueuedAt: it.EnqueuedAt.UTC(), Changes: []Change{},
	}
	if c.IsRef() {
		out.Change.Ref = c.Ref
	}
	for _, r := range it.Failing {
		out.FailingReasons = append(out.FailingReasons, scrub(r))
	}
	est := vc.estimate(pname, c.Project)
	out.EstimatedSeconds = seconds(est)
	bs := it.BuildSet
	if bs == nil {
		return out
	}
	out.BuildSet = bs.ID
	out.Merge = string(bs.Merge)
	out.created = bs.CreatedAt
	for _, s := range bs.Changes {
		if hidden.spec(s) {
			continue
		}
		sc := Change{Project: s.Project, Number: s.Number, Patchset: s.Patchset}
		if s.Branch != c.Branch {
			sc.Branch = s.Branch
		}
		if s.Number == 0 {
			sc.Ref = s.Ref
		}
		out.Changes = append(out.Changes, sc)
	}
	if b := bs.Build; b != nil {
		ob := &Build{Phase: string(b.Phase), Message: scrub(b.Message), URL: safeURL(b.URL), StartedAt: b.StartedAt.UTC(),
			Cancelled: b.Cancelled, Nodes: []Node{}, EstimatedSeconds: out.EstimatedSeconds}
		if !b.FinishedAt.IsZero() && b.Phase.Terminal() {
			f := b.FinishedAt.UTC()
			ob.FinishedAt = &f
		}
		for _, n := range b.Nodes {
			ob.Nodes = append(ob.Nodes, Node{Name: n.Name, Phase: string(n.Phase), URL: safeURL(n.URL), Message: scrub(n.Message)})
		}
		out.Build = ob
	}
	return out
}

// changeURL is the Gerrit web link of a change:
// <gerrit.url>c/<project>/+/<number>, or, without a Gerrit URL, the URL
// Gerrit gave the change.
func (vc viewConfig) changeURL(given, project string, number int) string {
	if number == 0 {
		return ""
	}
	if vc.gerritURL == "" {
		return safeURL(given)
	}
	return vc.gerritURL + "c/" + project + "/+/" + strconv.Itoa(number)
}

// safeURL returns u if it is an absolute http(s) URL, else "": links on
// the page never carry another scheme.
func safeURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return u
}

// stamp computes the time-dependent fields for now (whole seconds). It
// runs once per second per view, under the server's lock.
func (v *view) stamp(now time.Time) {
	sec := now.Unix()
	if v.stamped == sec {
		return
	}
	v.stamped = sec
	now = time.Unix(sec, 0).UTC()
	v.status.Now = now
	for pi := range v.status.Pipelines {
		for qi := range v.status.Pipelines[pi].Queues {
			items := v.status.Pipelines[pi].Queues[qi].Items
			for ii := range items {
				items[ii].stamp(now)
			}
		}
	}
}

func (it *Item) stamp(now time.Time) {
	it.EnqueuedSeconds = since(it.EnqueuedAt, now)
	it.ElapsedSeconds = 0
	if !it.created.IsZero() {
		end := now
		if it.Build != nil && it.Build.FinishedAt != nil {
			end = *it.Build.FinishedAt // the attempt ended with its build
		}
		it.ElapsedSeconds = since(it.created, end)
	}
	it.RemainingSeconds = max(0, it.EstimatedSeconds-it.ElapsedSeconds)
	b := it.Build
	if b == nil {
		return
	}
	end := now
	if b.FinishedAt != nil {
		end = *b.FinishedAt
	}
	b.ElapsedSeconds = since(b.StartedAt, end)
	b.RemainingSeconds = max(0, b.EstimatedSeconds-b.ElapsedSeconds)
	if b.FinishedAt != nil {
		b.RemainingSeconds = 0
		it.RemainingSeconds = 0
	}
}

// since is end - start in whole seconds, never negative (clocks of other
// machines may be ahead).
func since(start, end time.Time) int64 {
	if start.IsZero() || end.Before(start) {
		return 0
	}
	return int64(end.Sub(start) / time.Second)
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }
