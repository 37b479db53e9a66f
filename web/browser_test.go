package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// domItem is what the browser test reads of one item on the page.
type domItem struct {
	ID        string   `json:"id"`
	Change    string   `json:"change"`
	Project   string   `json:"project"`
	Ahead     string   `json:"ahead"`
	AheadLink string   `json:"aheadLink"`
	Failing   bool     `json:"failing"`
	Badge     string   `json:"badge"`
	Gerrit    string   `json:"gerrit"`
	Argo      string   `json:"argo"`
	Nodes     []string `json:"nodes"`
	Visible   bool     `json:"visible"`
	Bars      []string `json:"bars"` // "value/max label"
	// Before is the index, in DOM order, of the item ahead (-1: none).
	Before int `json:"before"`
}

const readItems = `(() => {
  const lis = Array.from(document.querySelectorAll('section.queue[data-queue="integrated@master"] li.item'));
  return lis.map((li) => {
    const q = (s) => li.querySelector(s);
    const ahead = q('p.ahead a');
    const aheadEl = li.dataset.ahead ? document.getElementById(li.dataset.ahead) : null;
    return {
      id: li.id, change: li.dataset.change, project: li.dataset.project, ahead: li.dataset.ahead,
      aheadLink: ahead ? ahead.getAttribute('href') : '',
      failing: li.classList.contains('failing'),
      badge: q('.badge.failing') ? q('.badge.failing').textContent : '',
      gerrit: q('a.change') ? q('a.change').href : '',
      argo: q('a.workflow-link') ? q('a.workflow-link').href : '',
      nodes: Array.from(li.querySelectorAll('.nodes li')).map((n) => n.textContent.replace(/\s+/g, ' ').trim()),
      visible: li.offsetParent !== null,
      bars: Array.from(li.querySelectorAll('progress')).map((p) =>
        p.value + '/' + p.max + ' ' + (document.querySelector('label[for="' + p.id + '"]') || {textContent: ''}).textContent),
      before: aheadEl ? lis.indexOf(aheadEl) : -1,
    };
  });
})()`

// normalizedDOM describes the content of <main>: each element with its
// sorted attributes and its non-blank text, one per line, indented.
const normalizedDOM = `(() => {
  const out = [];
  const walk = (n, d) => {
    for (const c of n.childNodes) {
      if (c.nodeType === 1) {
        const attrs = Array.from(c.attributes).map((a) => a.name + '=' + JSON.stringify(a.value)).sort().join(' ');
        out.push(d + c.tagName.toLowerCase() + ' ' + attrs);
        walk(c, d + '  ');
      } else if (c.nodeType === 3 && c.textContent.trim() !== '') {
        out.push(d + JSON.stringify(c.textContent.replace(/\s+/g, ' ').trim()));
      }
    }
  };
  walk(document.getElementById('status'), '');
  return out.join('\n');
})()`

// lineDiff shows the first lines where a and b differ.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			lo := max(0, i-3)
			return fmt.Sprintf("line %d:\ntemplate: %s\nscript:   %s\ncontext (template):\n%s", i+1, x, y,
				strings.Join(al[lo:min(len(al), i+3)], "\n"))
		}
	}
	return "(no difference)"
}

func TestStatusPageInChromium(t *testing.T) {
	w := gateScenario(t)
	h := newHarness(t, w, func(o *Options) { o.Refresh = 200 * time.Millisecond })
	ts := httptest.NewServer(h.srv)
	defer ts.Close()
	first := w.turn

	ctx := newBrowser(t, 1280, 1000)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(actx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	items := func() []domItem {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, err := chromedp.Run(actx, chromedp.Evaluate[[]domItem](readItems))
		if err != nil {
			t.Fatalf("reading the items: %v", err)
		}
		return out
	}
	evalString := func(expr string) string {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		s, err := chromedp.Run(actx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}

	run("loading the page", chromedp.Navigate(ts.URL+"/"))
	if got := evalString(`document.getElementById('status').dataset.turn`); got != strconv.FormatUint(first, 10) {
		t.Fatalf("server-rendered turn %s, want %d", got, first)
	}
	// The script renders the same markup as the template: after a refresh
	// of the same turn (and the same clock) nothing differs.
	served := evalString(normalizedDOM)
	run("waiting for a refresh of the same turn", chromedp.Poll[chromedp.Void](
		`Number(document.getElementById('status').dataset.refreshes) >= 1`, chromedp.WithPollingTimeout(30*time.Second)))
	if rendered := evalString(normalizedDOM); rendered != served {
		t.Errorf("the script's rendering differs from the template's:\n%s", lineDiff(served, rendered))
	}

	// A new turn: C's workflow reports a finished node. Only the script's
	// refresh from /api/status can bring it to the open page.
	w.progress(time.Second, "gate", numC, pipeline.NodeResult{Name: "build", Phase: pipeline.PhaseSucceeded, URL: testArgo + "ci/build-logs"})
	h.snaps.set(w.snapshot())
	run("waiting for the refresh", chromedp.Poll[chromedp.Void](
		`document.getElementById('status').dataset.turn === "`+strconv.FormatUint(w.turn, 10)+`" && Number(document.getElementById('status').dataset.refreshes) >= 1`,
		chromedp.WithPollingTimeout(30*time.Second)))

	got := items()
	byNum := map[int]domItem{}
	var nums []string
	for _, it := range got {
		n, _ := strconv.Atoi(it.Change)
		byNum[n] = it
		nums = append(nums, it.Change)
	}
	if want := []string{itoa(numA), itoa(numB), itoa(numC), itoa(numD), itoa(numE)}; !slices.Equal(nums, want) {
		t.Fatalf("items on the page %v, want %v", nums, want)
	}
	aheadOf := map[int]int{numA: 0, numB: numA, numC: numA, numD: numC, numE: numD}
	for n, it := range byNum {
		state := w.item("gate", n)
		if it.ID != state.ID {
			t.Errorf("change %d: element id %q, want %q", n, it.ID, state.ID)
		}
		if a := aheadOf[n]; a == 0 {
			if it.Ahead != "" || it.Before != -1 {
				t.Errorf("change %d at the head points at %q", n, it.Ahead)
			}
		} else {
			want := w.item("gate", a).ID
			if it.Ahead != want || it.AheadLink != "#"+want || it.Before < 0 || got[it.Before].Change != itoa(a) {
				t.Errorf("change %d: ahead %q (link %q, element %d), want %s (change %d) earlier on the page", n, it.Ahead, it.AheadLink, it.Before, want, a)
			}
		}
		if it.Failing != (n == numB) || (it.Badge != "") != (n == numB) {
			t.Errorf("change %d: failing %v, badge %q", n, it.Failing, it.Badge)
		}
		if wantG := testGerrit + "c/" + w.changes[n].Project + "/+/" + itoa(n); it.Gerrit != wantG {
			t.Errorf("change %d: Gerrit link %q, want %q", n, it.Gerrit, wantG)
		}
		if wantA := argoURL(state.BuildSet.ID); it.Argo != wantA {
			t.Errorf("change %d: Argo link %q, want %q", n, it.Argo, wantA)
		}
		if len(it.Bars) != 2 || !it.Visible {
			t.Errorf("change %d: progress bars %q, visible %v", n, it.Bars, it.Visible)
		}
	}
	if b := byNum[numB].Badge; !strings.Contains(b, "Failing") {
		t.Errorf("B's failing badge says %q: the mark must be words, not only colour", b)
	}
	if n := byNum[numC].Nodes; !slices.Equal(n, []string{"build Succeeded"}) {
		t.Errorf("C's nodes after the refresh: %q", n)
	}
	if n := byNum[numA].Nodes; !slices.Equal(n, []string{"lint Succeeded", "unit Running"}) {
		t.Errorf("A's nodes: %q", n)
	}
	body := evalString(`document.body.innerText`)
	for _, s := range []string{"org/hidden", "secret/tool", itoa(numSecret), itoa(numPriv), itoa(numCheck), "Private work"} {
		if strings.Contains(body, s) {
			t.Errorf("the page shows %q", s)
		}
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, "status-page.png", png, 800, 600)

	// The filter: typed into its labelled box, it hides the others and
	// goes into the URL, so it survives a reload and the refreshes.
	run("typing a filter", chromedp.SendKeys(chromedp.ID("q"), "org/b"))
	visible := func() []string {
		var out []string
		for _, it := range items() {
			if it.Visible {
				out = append(out, it.Change)
			}
		}
		return out
	}
	wantB := []string{itoa(numB), itoa(numD)}
	if got := visible(); !slices.Equal(got, wantB) {
		t.Errorf("visible under org/b: %v, want %v", got, wantB)
	}
	if s := evalString(`location.search`); s != "?q=org%2Fb" {
		t.Errorf("location.search %q", s)
	}
	run("reloading", chromedp.Reload(), chromedp.Poll[chromedp.Void](
		`Number(document.getElementById('status').dataset.refreshes) >= 1`, chromedp.WithPollingTimeout(30*time.Second)))
	if v := evalString(`document.getElementById('q').value`); v != "org/b" {
		t.Errorf("the filter box after a reload holds %q", v)
	}
	if got := visible(); !slices.Equal(got, wantB) {
		t.Errorf("visible under org/b after a reload and a refresh: %v, want %v", got, wantB)
	}
	if hidden := evalString(`String(document.querySelector('section.pipeline[data-pipeline="check"]').hidden)`); hidden != "true" {
		t.Errorf("the check pipeline, without org/b items, hidden=%s", hidden)
	}

	// A phone: nothing is wider than the screen.
	run("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait),
		chromedp.Navigate(ts.URL+"/"))
	if overflow := evalString(`String(document.documentElement.scrollWidth - window.innerWidth)`); overflow != "0" {
		t.Errorf("on a 390px wide screen the page is %spx too wide", overflow)
	}
	phone, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, "status-page-phone.png", phone, 300, 600)
}
