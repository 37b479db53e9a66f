package web

// How the browser test (browser_test.go) reads the status page in
// Chromium; internal/browsertest starts and drives the browser.

import (
	"fmt"
	"strings"
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
