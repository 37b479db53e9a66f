package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }, // as in the JSON
	"clock":   func(t time.Time) string { return t.UTC().Format("15:04:05 UTC") },
}).ParseFS(assets, "assets/page.html"))

// staticHandler serves the page's script and style sheet.
func staticHandler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	files := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "page.html" || strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	}))
}

// pageData is what the template renders: the status, with what the page
// adds (filter, chain layout, labels).
type pageData struct {
	Status        *Status
	Query         string
	RefreshMillis int64
	Pipelines     []pagePipeline
	NoMatch       bool
}

type pagePipeline struct {
	Pipeline
	HeadingID string
	Hidden    bool
	Queues    []pageQueue
}

type pageQueue struct {
	Queue
	HeadingID string
	Hidden    bool
	Items     []pageItem
}

// pageItem is an item as the template shows it: flat, every text made
// here, so that the template calls no function (it renders 1,000 items).
type pageItem struct {
	ID, Classes, Ahead, AheadLabel       string
	Hidden, Failing, Submitting, Waiting bool
	NonLive                              bool
	Change                               Change
	Reasons                              []string
	EnqueuedAt, Age                      string
	Attempt                              pageBar
	// Others are the nearest changes of the speculative list but the
	// item's own, at most maxOthers; OthersMore counts those left out.
	Others     []Change
	OthersMore int
	Build      *pageBuild
}

type pageBuild struct {
	URL, Phase, PhaseClass, Message string
	Bar                             pageBar
	Nodes                           []pageNode
}

type pageNode struct{ Name, URL, Phase, PhaseClass, Message string }

// pageBar is a progress bar: its label and values.
type pageBar struct {
	Label      string
	Value, Max int64
}

func newBar(what string, elapsed, estimated, remaining int64, done bool) pageBar {
	return pageBar{Label: what + ": " + progressText(elapsed, estimated, remaining, done),
		Value: barValue(elapsed, estimated, done), Max: estimated}
}

func newPageItem(it *Item, aheadLabel string, off bool, gerritURL, q string) pageItem {
	done := it.Build != nil && it.Build.FinishedAt != nil
	pi := pageItem{ID: it.ID, Ahead: it.Ahead, AheadLabel: aheadLabel, Hidden: !matches(it, q),
		Failing: it.Failing, Submitting: it.Submitting, Waiting: !it.Active, NonLive: !it.Live,
		Change: it.Change, Reasons: it.FailingReasons,
		EnqueuedAt: it.EnqueuedAt.Format(time.RFC3339Nano), Age: fmtDur(it.EnqueuedSeconds),
		Attempt: newBar("This attempt", it.ElapsedSeconds, it.EstimatedSeconds, it.RemainingSeconds, done)}
	classes := []string{"item"}
	if it.Failing {
		classes = append(classes, "failing")
	}
	if off {
		classes = append(classes, "offchain")
	}
	if !it.Active {
		classes = append(classes, "inactive")
	}
	if !it.Live {
		classes = append(classes, "nonlive")
	}
	pi.Classes = strings.Join(classes, " ")
	own := func(c *Change) bool {
		return c.Project == it.Change.Project && c.Number == it.Change.Number && c.Ref == it.Change.Ref
	}
	others := 0
	for i := range it.Changes {
		if !own(&it.Changes[i]) {
			others++
		}
	}
	pi.OthersMore = max(0, others-maxOthers)
	skip := pi.OthersMore
	for _, c := range it.Changes {
		if own(&c) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if c.Number != 0 && gerritURL != "" {
			c.URL = gerritURL + "c/" + c.Project + "/+/" + strconv.Itoa(c.Number)
		}
		pi.Others = append(pi.Others, c)
	}
	if b := it.Build; b != nil {
		pb := &pageBuild{URL: b.URL, Phase: b.Phase, PhaseClass: "phase-" + strings.ToLower(b.Phase), Message: b.Message,
			Bar: newBar("Workflow", b.ElapsedSeconds, b.EstimatedSeconds, b.RemainingSeconds, done)}
		for _, n := range b.Nodes {
			pb.Nodes = append(pb.Nodes, pageNode{Name: n.Name, URL: n.URL, Phase: n.Phase,
				PhaseClass: "phase-" + strings.ToLower(n.Phase), Message: n.Message})
		}
		pi.Build = pb
	}
	return pi
}

// maxOthers is how many changes of an item's speculative list the page
// names (the nearest ones); the API has them all.
const maxOthers = 5

// matches is the filter of the page (also in app.js): a substring of the
// project, or a prefix of the change number, case-insensitively.
func matches(it *Item, q string) bool {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return true
	}
	if strings.Contains(strings.ToLower(it.Change.Project), q) {
		return true
	}
	return it.Change.Number != 0 && strings.HasPrefix(strconv.Itoa(it.Change.Number), q)
}

func newPageData(st *Status, q string, refresh time.Duration) pageData {
	d := pageData{Status: st, Query: q, RefreshMillis: refresh.Milliseconds()}
	if st == nil {
		return d
	}
	shown := 0
	for _, p := range st.Pipelines {
		pp := pagePipeline{Pipeline: p, HeadingID: "p-" + p.Name, Hidden: len(p.Queues) > 0}
		for _, qu := range p.Queues {
			pq := pageQueue{Queue: qu, HeadingID: "q-" + p.Name + "-" + qu.Name, Hidden: true}
			label := map[string]string{}
			for i := range qu.Items {
				label[qu.Items[i].ID] = itemLabel(&qu.Items[i])
			}
			off := offChain(qu.Items)
			for i := range qu.Items {
				pi := newPageItem(&qu.Items[i], label[qu.Items[i].Ahead], off[i], st.GerritURL, q)
				if !pi.Hidden {
					pq.Hidden, pp.Hidden = false, false
					shown++
				}
				pq.Items = append(pq.Items, pi)
			}
			pp.Queues = append(pp.Queues, pq)
		}
		d.Pipelines = append(d.Pipelines, pp)
	}
	d.NoMatch = shown == 0 && strings.TrimSpace(q) != ""
	return d
}

// itemLabel names an item in "tested behind" links: its change number, or
// its ref.
func itemLabel(it *Item) string {
	if it.Change.Number != 0 {
		return strconv.Itoa(it.Change.Number)
	}
	return it.Change.Project + " " + it.Change.Ref
}

// offChain marks the items off the queue's main chain: those that an item
// behind them is tested without (they fail, or are behind one that does).
func offChain(items []Item) []bool {
	pos := make(map[string]int, len(items))
	for j := range items {
		pos[items[j].ID] = j
	}
	off := make([]bool, len(items))
	for j := range items {
		from := 0 // a head: every item before it is off the chain
		if a, ok := pos[items[j].Ahead]; ok {
			from = a + 1
		}
		for i := from; i < j; i++ {
			off[i] = true
		}
	}
	return off
}

// fmtDur formats seconds as the page does (also in app.js): 45s, 3m 5s,
// 2h 7m.
func fmtDur(s int64) string {
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", max(s, 0))
	case s < 3600:
		return fmt.Sprintf("%dm %ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh %dm", s/3600, s/60%60)
}

// barValue is the value of a progress bar (also in app.js): the elapsed
// time, at most the estimate; full once done.
func barValue(elapsed, estimated int64, done bool) int64 {
	if done {
		return estimated
	}
	return max(0, min(elapsed, estimated))
}

// progressText describes a progress bar in words (also in app.js).
func progressText(elapsed, estimated, remaining int64, done bool) string {
	switch {
	case done:
		return fmt.Sprintf("Took %s", fmtDur(elapsed))
	case remaining == 0:
		return fmt.Sprintf("%s, over the estimate of %s", fmtDur(elapsed), fmtDur(estimated))
	}
	return fmt.Sprintf("%s of about %s, %s left", fmtDur(elapsed), fmtDur(estimated), fmtDur(remaining))
}

// servePage renders the status page; a page is rendered at most once per
// turn, second and filter.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	now := s.o.Clock.Now()
	s.mu.Lock()
	v, err := s.current(now)
	if err != nil {
		s.mu.Unlock()
		s.o.Logger.Error("status page", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var st *Status
	key := "-/" + q
	if v != nil {
		st = &v.status
		key = fmt.Sprintf("%d/%d/%s", s.turn, v.stamped, q)
	}
	if s.page.key != key {
		var b bytes.Buffer
		if err := pageTemplate.Execute(&b, newPageData(st, q, s.o.Refresh)); err != nil {
			s.mu.Unlock()
			http.Error(w, "rendering the status page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		s.page = cachedBody{key: key, body: b.Bytes()}
	}
	body := s.page.body
	s.mu.Unlock()
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	code := http.StatusOK
	if v == nil {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
