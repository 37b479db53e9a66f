package web

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// dom is a parsed page.
type dom struct{ root *html.Node }

func parsePage(t *testing.T, body string) dom {
	t.Helper()
	n, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return dom{n}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func hasClass(n *html.Node, class string) bool {
	v, _ := attr(n, "class")
	return slices.Contains(strings.Fields(v), class)
}

func (d dom) all(match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(d.root)
	return out
}

func within(n *html.Node) dom { return dom{n} }

func tagClass(tag, class string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == tag && (class == "" || hasClass(n, class)) }
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func TestPageRendersTheQueuesAsAChain(t *testing.T) {
	w := gateScenario(t)
	h := newHarness(t, w)
	rec := h.get("/")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	d := parsePage(t, rec.Body.String())

	gate := d.all(func(n *html.Node) bool { v, _ := attr(n, "data-queue"); return v == "integrated@master" })
	if len(gate) != 1 {
		t.Fatalf("%d gate queues on the page", len(gate))
	}
	items := within(gate[0]).all(tagClass("li", "item"))
	var nums []string
	for _, li := range items {
		num, _ := attr(li, "data-change")
		nums = append(nums, num)
	}
	if want := []string{itoa(numA), itoa(numB), itoa(numC), itoa(numD), itoa(numE)}; !slices.Equal(nums, want) {
		t.Fatalf("gate items on the page %v, want %v", nums, want)
	}
	idOf := map[int]string{}
	for _, n := range []int{numA, numB, numC, numD, numE} {
		idOf[n] = w.item("gate", n).ID
	}
	for i, li := range items {
		n := []int{numA, numB, numC, numD, numE}[i]
		if id, _ := attr(li, "id"); id != idOf[n] {
			t.Errorf("item of %d: id %q, want %q", n, id, idOf[n])
		}
		ahead, _ := attr(li, "data-ahead")
		want := map[int]string{numA: "", numB: idOf[numA], numC: idOf[numA], numD: idOf[numC], numE: idOf[numD]}[n]
		if ahead != want {
			t.Errorf("item of %d: data-ahead %q, want %q", n, ahead, want)
		}
		// The chain is also said in words, with a link to the item ahead.
		p := within(li).all(tagClass("p", "ahead"))[0]
		if want == "" {
			if text(p) != "Head of the queue" {
				t.Errorf("item of %d: %q", n, text(p))
			}
		} else if a := within(p).all(tagClass("a", "")); len(a) != 1 || a[0].Attr[0].Val != "#"+want {
			t.Errorf("item of %d: ahead paragraph %q does not link to #%s", n, text(p), want)
		}
		failing := hasClass(li, "failing")
		badge := within(li).all(tagClass("strong", "failing"))
		if failing != (n == numB) || (len(badge) == 1) != (n == numB) {
			t.Errorf("item of %d: class failing %v, %d failing badges", n, failing, len(badge))
		}
		// B is off the chain: C is tested without it.
		if hasClass(li, "offchain") != (n == numB) {
			t.Errorf("item of %d: offchain %v", n, hasClass(li, "offchain"))
		}
		change := within(li).all(tagClass("a", "change"))
		if href, _ := attr(change[0], "href"); len(change) != 1 || href != testGerrit+"c/"+w.changes[n].Project+"/+/"+itoa(n) {
			t.Errorf("item of %d: change link %q", n, href)
		}
		wf := within(li).all(tagClass("a", "workflow-link"))
		if href, _ := attr(wf[0], "href"); len(wf) != 1 || href != argoURL(w.item("gate", n).BuildSet.ID) {
			t.Errorf("item of %d: workflow link %q", n, href)
		}
		bars := within(li).all(tagClass("progress", ""))
		if len(bars) != 2 {
			t.Fatalf("item of %d: %d progress bars, want the item's and the workflow's", n, len(bars))
		}
		for _, bar := range bars {
			id, _ := attr(bar, "id")
			max, _ := attr(bar, "max")
			labels := within(li).all(func(l *html.Node) bool { v, _ := attr(l, "for"); return l.Data == "label" && v == id })
			if max != "600" || len(labels) != 1 || text(labels[0]) == "" {
				t.Errorf("item of %d: progress %s max %q with %d labels", n, id, max, len(labels))
			}
		}
	}
	// Text is escaped, never markup.
	if !strings.Contains(rec.Body.String(), "Document &lt;everything&gt; &amp; more") {
		t.Error("the subject of E is not shown escaped")
	}
	// Landmarks and the live region.
	if len(d.all(tagClass("h1", ""))) != 1 || len(d.all(tagClass("h2", ""))) != 2 || len(d.all(tagClass("main", ""))) != 1 {
		t.Error("want one h1, an h2 per pipeline and a main")
	}
	live := d.all(func(n *html.Node) bool { v, _ := attr(n, "aria-live"); return v == "polite" })
	if len(live) != 1 || !strings.Contains(text(live[0]), "Turn "+itoa(int(w.turn))) {
		t.Errorf("live region: %d", len(live))
	}
	label := d.all(func(n *html.Node) bool { v, _ := attr(n, "for"); return n.Data == "label" && v == "q" })
	if len(label) != 1 {
		t.Error("the filter has no label")
	}
}

func TestPageFilterSurvivesReload(t *testing.T) {
	w := gateScenario(t)
	h := newHarness(t, w)
	visible := func(target string) (items []string, noMatch bool) {
		d := parsePage(t, h.get(target).Body.String())
		for _, li := range d.all(tagClass("li", "item")) {
			if _, hidden := attr(li, "hidden"); !hidden {
				n, _ := attr(li, "data-change")
				p, _ := attr(li, "data-project")
				items = append(items, p+"#"+n)
			}
		}
		nm := d.all(func(n *html.Node) bool { v, _ := attr(n, "id"); return v == "no-match" })
		_, hidden := attr(nm[0], "hidden")
		return items, !hidden
	}
	all, _ := visible("/")
	if len(all) != 6 { // check: A; gate: A, B, C, D, E
		t.Fatalf("unfiltered page shows %v", all)
	}
	if got, _ := visible("/?q=ORG/B"); !slices.Equal(got, []string{"org/b#1002", "org/b#1006"}) {
		t.Errorf("?q=ORG/B shows %v", got)
	}
	if got, _ := visible("/?q=1007"); !slices.Equal(got, []string{"org/a#1007"}) {
		t.Errorf("?q=1007 shows %v", got)
	}
	got, noMatch := visible("/?q=nothing-like-this")
	if len(got) != 0 || !noMatch {
		t.Errorf("?q=nothing-like-this shows %v, no-match message %v", got, noMatch)
	}
	d := parsePage(t, h.get("/?q=org/b").Body.String())
	// The check pipeline has no org/b item: its section is hidden.
	for _, sec := range d.all(tagClass("section", "pipeline")) {
		name, _ := attr(sec, "data-pipeline")
		_, hidden := attr(sec, "hidden")
		if hidden != (name == "check") {
			t.Errorf("pipeline %s hidden=%v under ?q=org/b", name, hidden)
		}
	}
	in := d.all(func(n *html.Node) bool { v, _ := attr(n, "id"); return n.Data == "input" && v == "q" })
	if v, _ := attr(in[0], "value"); v != "org/b" {
		t.Errorf("the filter box holds %q, want the query", v)
	}
}

func TestStaticAssetsAreServed(t *testing.T) {
	h := newHarness(t, newWorld(t))
	for target, ctype := range map[string]string{"/static/app.js": "javascript", "/static/style.css": "text/css"} {
		rec := h.get(target)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), ctype) || rec.Body.Len() < 100 {
			t.Errorf("GET %s: %d %q %d bytes", target, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
	}
	for _, target := range []string{"/static/page.html", "/static/", "/static/nothing.js"} {
		if rec := h.get(target); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, rec.Code)
		}
	}
	// No external resources: everything the page loads is ours.
	body := h.get("/").Body.String()
	for _, ext := range []string{"http://", "https://", "//fonts", "cdn"} {
		if strings.Contains(strings.SplitN(body, "<main", 2)[0], ext) {
			t.Errorf("the page head refers to %q", ext)
		}
	}
}

func TestDurationsAreFormattedForPeople(t *testing.T) {
	for s, want := range map[int64]string{0: "0s", 59: "59s", 60: "1m 0s", 185: "3m 5s", 3600: "1h 0m", 7625: "2h 7m", -3: "0s"} {
		if got := fmtDur(s); got != want {
			t.Errorf("fmtDur(%d) = %q, want %q", s, got, want)
		}
	}
	for _, c := range []struct {
		e, est, rem int64
		done        bool
		want        string
	}{
		{0, 600, 600, false, "0s of about 10m 0s, 10m 0s left"},
		{120, 600, 480, false, "2m 0s of about 10m 0s, 8m 0s left"},
		{700, 600, 0, false, "11m 40s, over the estimate of 10m 0s"},
		{67, 600, 0, true, "Took 1m 7s"},
	} {
		if got := progressText(c.e, c.est, c.rem, c.done); got != c.want {
			t.Errorf("progressText(%d, %d, %d, %v) = %q, want %q", c.e, c.est, c.rem, c.done, got, c.want)
		}
	}
}

func TestPageNamesOnlyTheNearestChangesAhead(t *testing.T) {
	it := Item{ID: "gate-9", Change: Change{Project: "org/a", Number: 9}}
	for n := 1; n <= 9; n++ {
		it.Changes = append(it.Changes, Change{Project: "org/a", Number: n})
	}
	pi := newPageItem(&it, "", false, testGerrit, "")
	if got := changeNumbers(pi.Others); !slices.Equal(got, []int{4, 5, 6, 7, 8}) || pi.OthersMore != 3 {
		t.Errorf("others %v and %d more; want the nearest five, 4..8, and 3 more", got, pi.OthersMore)
	}
	if pi.Others[0].URL != testGerrit+"c/org/a/+/4" {
		t.Errorf("link %q", pi.Others[0].URL)
	}
}
