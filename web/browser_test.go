package web

import (
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seakeeper-ci/seakeeper/internal/browsertest"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

func TestStatusPageInChromium(t *testing.T) {
	w := gateScenario(t)
	h := newHarness(t, w, func(o *Options) { o.Refresh = 200 * time.Millisecond })
	ts := httptest.NewServer(h.srv)
	defer ts.Close()
	first := w.turn

	b := browsertest.New(t, 1280, 1000)
	run := b.Do
	items := func() []domItem { t.Helper(); return browsertest.Eval[[]domItem](b, readItems) }
	evalString := func(expr string) string { t.Helper(); return browsertest.Eval[string](b, expr) }

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
	b.Screenshot("status-page.png", 800, 600)

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
	b.Screenshot("status-page-phone.png", 300, 600)
}
