package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seakeeper-ci/seakeeper/internal/browsertest"
	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/web"
)

// The browser tier against a running daemon (DESIGN §6, tier 4): the
// status page of `seakeeper demo`, with its gate queue full, in headless
// Chromium.

const (
	// demoBrowserPace keeps every workflow of the demo running that long,
	// so that the gate queue stays full while the browser looks at it.
	demoBrowserPace = 10 * time.Second
	// demoBrowserWait bounds each wait for the demo (generously: the
	// demo runs with -race on a shared machine).
	demoBrowserWait = 2 * time.Minute
	// demoGateRunning is how many gate items must have builds that run
	// for demoGateElapsed at least, so that the page shows some progress.
	demoGateRunning = 3
	demoGateElapsed = 2
)

// pageItem is what the test reads of one item of the gate queue on the
// page.
type pageItem struct {
	ID      string `json:"id"`
	Change  string `json:"change"`
	Project string `json:"project"`
	Ahead   string `json:"ahead"`
	// AheadHref and AheadText are the "Tested behind" link; AheadAt the
	// index on the page of the element it points at (-1: none);
	// AheadLine the whole line.
	AheadHref string `json:"aheadHref"`
	AheadText string `json:"aheadText"`
	AheadAt   int    `json:"aheadAt"`
	AheadLine string `json:"aheadLine"`
	// Gerrit and GerritText are the change link, resolved, and its text.
	Gerrit     string `json:"gerrit"`
	GerritText string `json:"gerritText"`
	EnqueuedAt string `json:"enqueuedAt"`
	Age        string `json:"age"`
	AgeLine    string `json:"ageLine"`
	Phase      string `json:"phase"`
	Bars       []bar  `json:"bars"`
}

// bar is a <progress> of an item and its label.
type bar struct {
	ID    string  `json:"id"`
	Max   float64 `json:"max"`
	Value float64 `json:"value"`
	Label string  `json:"label"`
}

// pageState is the page's turn and its gate queue, read at one moment.
type pageState struct {
	Turn  string     `json:"turn"`
	Items []pageItem `json:"items"`
}

// readGateQueue reads the page in one go (the page's script may re-render
// it between two evaluations).
const readGateQueue = `(() => {
  const sec = document.querySelector('section.pipeline[data-pipeline="gate"] section.queue[data-queue="demo@master"]');
  const lis = sec ? Array.from(sec.querySelectorAll('li.item')) : [];
  const text = (e) => e ? e.textContent.replace(/\s+/g, ' ').trim() : '';
  return {
    turn: document.getElementById('status').dataset.turn,
    items: lis.map((li) => {
      const q = (s) => li.querySelector(s);
      const ahead = q('p.ahead a');
      const aheadEl = li.dataset.ahead ? document.getElementById(li.dataset.ahead) : null;
      return {
        id: li.id, change: li.dataset.change, project: li.dataset.project, ahead: li.dataset.ahead,
        aheadHref: ahead ? ahead.getAttribute('href') : '', aheadText: text(ahead),
        aheadAt: aheadEl ? lis.indexOf(aheadEl) : -1, aheadLine: text(q('p.ahead')),
        gerrit: q('a.change') ? q('a.change').href : '', gerritText: text(q('a.change')),
        enqueuedAt: q('p.age time') ? q('p.age time').getAttribute('datetime') : '',
        age: text(q('p.age time')), ageLine: text(q('p.age')),
        phase: text(q('.build .workflow .phase')),
        bars: Array.from(li.querySelectorAll('progress')).map((p) => ({
          id: p.id, max: p.max, value: p.value,
          label: text(document.querySelector('label[for="' + p.id + '"]')),
        })),
      };
    }),
  };
})()`

// TestDemoStatusPageInChromium runs `seakeeper demo` in-process with slow
// workflows, waits until its gate queue holds at least three items with
// running builds, and loads the status page in headless Chromium: the
// page shows the items of /api/status of the same turn, in order, each
// chained to its item ahead, linked to its Gerrit change, with its
// enqueue time and labelled progress bars that assistive technology reads
// as such. It saves a screenshot, then Ctrl-C stops the demo cleanly.
func TestDemoStatusPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo")
	}
	b := browsertest.New(t, 1280, 1200) // skips before the demo starts
	started := time.Now()

	dir := filepath.Join(t.TempDir(), "demo")
	out, errOut := &testlog.Buffer{}, &testlog.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"demo", "--dir", dir, "--listen", "127.0.0.1:0", "--pace", demoBrowserPace.String()}, out, errOut)
	}()
	exited, code := false, 0
	// However the test ends, the demo is stopped before the next test.
	defer func() {
		if !exited {
			interruptDemo(t, done, out)
		}
	}()
	demoEnded := func() {
		t.Helper()
		select {
		case code = <-done:
			exited = true
			t.Fatalf("the demo ended with %d; stdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
		default:
		}
	}

	statusURL := waitOutput(t, out, demoEnded, regexp.MustCompile(`Status page +(http://\S+/)\n`))
	gerritURL := waitOutput(t, out, demoEnded, regexp.MustCompile(`Gerrit \(fake\) +(http://[0-9.:]+)/`))
	client := &http.Client{Timeout: 30 * time.Second}

	// The gate queue fills once the check pipeline passed the four changes
	// and Carol approved them.
	var st web.Status
	deadline := time.Now().Add(demoBrowserWait)
	for st = getStatus(t, client, statusURL); runningGate(st) < demoGateRunning; st = getStatus(t, client, statusURL) {
		demoEnded()
		if time.Now().After(deadline) {
			t.Fatalf("no %d gate builds running for %ds within %v; the last status:\n%s\nstdout:\n%s", demoGateRunning, demoGateElapsed, demoBrowserWait, mustJSON(st), out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d gate builds running for %ds at turn %d, %v after the start", runningGate(st), demoGateElapsed, st.Turn, time.Since(started).Round(time.Millisecond))

	// The page and the API must show the same turn: retry while the
	// daemon moves on between the two reads.
	var page pageState
	for attempt := 1; ; attempt++ {
		st = getStatus(t, client, statusURL)
		b.Do("loading the status page", chromedp.Navigate(statusURL))
		page = browsertest.Eval[pageState](b, readGateQueue)
		if page.Turn == strconv.FormatUint(st.Turn, 10) && runningGate(st) >= demoGateRunning {
			t.Logf("the page and the API at turn %d (attempt %d): %d gate items", st.Turn, attempt, len(page.Items))
			break
		}
		demoEnded()
		if time.Now().After(deadline) {
			t.Fatalf("the page (turn %s) and /api/status (turn %d, %d gate builds running) never agreed within %v",
				page.Turn, st.Turn, runningGate(st), demoBrowserWait)
		}
	}
	items := gateQueue(st).Items
	if len(page.Items) != len(items) {
		t.Fatalf("the page shows %d gate items, /api/status %d:\n%+v\n%s", len(page.Items), len(items), page.Items, mustJSON(items))
	}
	for i, want := range items {
		checkPageItem(t, b, i, page.Items[i], want, items, gerritURL)
	}

	b.Screenshot("status-page-daemon.png", 800, 600)

	// Ctrl-C, as a user would: the demo stops cleanly.
	code, exited = interruptDemo(t, done, out), true
	if code != 0 || errOut.String() != "" {
		t.Errorf("exit %d after SIGINT, stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{"Interrupted: the story did not finish.", "\nStopped. Removed " + dir + "\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is still there after the demo: %v", dir, err)
	}
	t.Logf("the test took %v", time.Since(started).Round(time.Millisecond))
}

// checkPageItem compares item i of the gate queue on the page with the
// API's.
func checkPageItem(t *testing.T, b *browsertest.Browser, i int, got pageItem, want web.Item, all []web.Item, gerritURL string) {
	t.Helper()
	c := want.Change
	name := fmt.Sprintf("gate item %d (%s %d)", i, c.Project, c.Number)
	if got.ID != want.ID || got.Change != strconv.Itoa(c.Number) || got.Project != c.Project {
		t.Errorf("%s: the page shows %s: %s %s", name, got.ID, got.Project, got.Change)
	}

	// The chain: a link to the item ahead, which is earlier on the page.
	if want.Ahead == "" {
		if got.Ahead != "" || got.AheadHref != "" || got.AheadLine != "Head of the queue" {
			t.Errorf("%s is the head, the page says %q (ahead %q)", name, got.AheadLine, got.Ahead)
		}
	} else {
		j := indexOfItem(all, want.Ahead)
		if j < 0 {
			t.Fatalf("%s: ahead %s is not in the API's queue", name, want.Ahead)
		}
		if got.Ahead != want.Ahead || got.AheadHref != "#"+want.Ahead || got.AheadAt != j || j >= i ||
			got.AheadText != strconv.Itoa(all[j].Change.Number) || got.AheadLine != "Tested behind "+got.AheadText {
			t.Errorf("%s: the page says %q, linking %q (element %d), want tested behind %s, change %d, item %d",
				name, got.AheadLine, got.AheadHref, got.AheadAt, want.Ahead, all[j].Change.Number, j)
		}
	}

	// The change in Gerrit.
	link := fmt.Sprintf("%s/c/%s/+/%d", gerritURL, c.Project, c.Number)
	if got.Gerrit != link || c.URL != link || got.GerritText != fmt.Sprintf("%d,%d", c.Number, c.Patchset) {
		t.Errorf("%s: Gerrit link %q %q (API %q), want %q %d,%d", name, got.GerritText, got.Gerrit, c.URL, link, c.Number, c.Patchset)
	}

	// The enqueue time and the age.
	at, err := time.Parse(time.RFC3339Nano, got.EnqueuedAt)
	if err != nil || !at.Equal(want.EnqueuedAt) {
		t.Errorf("%s: enqueued at %q on the page, %v in the API", name, got.EnqueuedAt, want.EnqueuedAt)
	}
	// The page was rendered after the API's answer: it is as old or older.
	if age, ok := parseAge(got.Age); !ok || age < want.EnqueuedSeconds || got.AgeLine != "Enqueued "+got.Age+" ago" {
		t.Errorf("%s: age %q in %q, want %ds or more", name, got.Age, got.AgeLine, want.EnqueuedSeconds)
	}

	// The build and the two progress bars, as assistive technology reads
	// them: this attempt's and the workflow's.
	if want.Build == nil || got.Phase != want.Build.Phase {
		t.Errorf("%s: workflow phase %q on the page, API build %+v", name, got.Phase, want.Build)
		return
	}
	// Each bar's value is the elapsed time, capped at the estimate, of a
	// moment at or after the API's.
	bars := []struct {
		id, label         string
		elapsed, estimate int64
	}{
		{"pi-" + want.ID, "This attempt: ", want.ElapsedSeconds, want.EstimatedSeconds},
		{"pb-" + want.ID, "Workflow: ", want.Build.ElapsedSeconds, want.Build.EstimatedSeconds},
	}
	if len(got.Bars) != len(bars) {
		t.Fatalf("%s: progress bars %+v, want %d", name, got.Bars, len(bars))
	}
	for k, w := range bars {
		g, least := got.Bars[k], float64(min(w.elapsed, w.estimate))
		if g.ID != w.id || !strings.HasPrefix(g.Label, w.label) || g.Max != float64(w.estimate) || g.Value < least || g.Value > g.Max {
			t.Errorf("%s: progress bar %+v, want %s labelled %q… valued %v..%d", name, g, w.id, w.label, least, w.estimate)
		}
		ax := b.Accessible(`progress[id="` + w.id + `"]`)
		v, err := strconv.ParseFloat(ax.Value, 64)
		if ax.Role != "progressbar" || !strings.HasPrefix(ax.Name, w.label) || ax.Properties["valuemin"] != "0" ||
			ax.Properties["valuemax"] != strconv.FormatInt(w.estimate, 10) || err != nil || v < least || v > float64(w.estimate) {
			t.Errorf("%s: assistive technology reads %s as %+v, want a progressbar named %q… valued %v..%d", name, w.id, ax, w.label, least, w.estimate)
		}
	}
}

// interruptDemo sends SIGINT to the process, as Ctrl-C does, and returns
// the demo's exit status. The demo's handler is installed: it printed.
func interruptDemo(t *testing.T, done <-chan int, out *testlog.Buffer) int {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		return code
	case <-time.After(demoBrowserWait):
		t.Errorf("the demo still runs %v after SIGINT; stdout:\n%s", demoBrowserWait, out.String())
		return -1
	}
}

// waitOutput waits for re in the demo's output and returns its first
// group; ended fails the test if the demo ended.
func waitOutput(t *testing.T, out *testlog.Buffer, ended func(), re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(demoBrowserWait)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		ended()
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the demo's output within %v:\n%s", re, demoBrowserWait, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getStatus returns the daemon's /api/status.
func getStatus(t *testing.T, client *http.Client, statusURL string) web.Status {
	t.Helper()
	resp, err := client.Get(statusURL + "api/status")
	if err != nil {
		t.Fatalf("GET /api/status: %v", err)
	}
	defer resp.Body.Close()
	var st web.Status
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/status: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET /api/status: decoding: %v", err)
	}
	return st
}

// gateQueue returns the gate pipeline's shared queue "demo" of master in st, or an
// empty queue.
func gateQueue(st web.Status) web.Queue {
	for _, p := range st.Pipelines {
		for _, q := range p.Queues {
			if p.Name == "gate" && q.Name == "demo@master" {
				return q
			}
		}
	}
	return web.Queue{}
}

// runningGate counts the items of the gate queue whose build runs for
// demoGateElapsed seconds at least.
func runningGate(st web.Status) int {
	n := 0
	for _, it := range gateQueue(st).Items {
		if it.Build != nil && it.Build.Phase == "Running" && it.Build.ElapsedSeconds >= demoGateElapsed {
			n++
		}
	}
	return n
}

// parseAge reads an age as the page writes it ("5s", "2m 5s", "1h 2m")
// in seconds.
func parseAge(s string) (int64, bool) {
	m := regexp.MustCompile(`^(?:(\d+)h )?(?:(\d+)m)? ?(?:(\d+)s)?$`).FindStringSubmatch(s)
	if m == nil || m[1]+m[2]+m[3] == "" {
		return 0, false
	}
	var secs int64
	for i, unit := range []int64{3600, 60, 1} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil {
				return 0, false
			}
			secs += n * unit
		}
	}
	return secs, true
}

func indexOfItem(items []web.Item, id string) int {
	for i, it := range items {
		if it.ID == id {
			return i
		}
	}
	return -1
}

func mustJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}
