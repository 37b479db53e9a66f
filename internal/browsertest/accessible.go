package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Accessible is what assistive technology is told about one element, as
// Chromium computes it: its role, its accessible name (for a form control,
// the text of its <label>), its value and its other properties (for a
// progress bar valuemin and valuemax), all as text.
type Accessible struct {
	Role, Name, Value string
	Properties        map[string]string
}

// Accessible returns what Chromium tells assistive technology about the
// element that the CSS selector finds first in the page.
func (b *Browser) Accessible(selector string) Accessible {
	b.t.Helper()
	a, err := Run(b, accessibleOf(selector))
	if err != nil {
		b.t.Fatalf("the accessibility of %s: %v", selector, err)
	}
	return a
}

// axObjectGroup holds the page objects accessibleOf refers to, released
// when it is done.
const axObjectGroup = "browsertest-accessible"

func accessibleOf(selector string) chromedp.Action[Accessible] {
	return func(ctx context.Context, t *chromedp.Target) (Accessible, error) {
		sel, err := json.Marshal(selector)
		if err != nil {
			return Accessible{}, err
		}
		res, err := cdp.Call(ctx, t, runtime.Evaluate, runtime.EvaluateParams{
			Expression:  "document.querySelector(" + string(sel) + ")",
			ObjectGroup: axObjectGroup,
		})
		if err != nil {
			return Accessible{}, err
		}
		defer func() {
			_, _ = cdp.Call(ctx, t, runtime.ReleaseObjectGroup, runtime.ReleaseObjectGroupParams{ObjectGroup: axObjectGroup})
		}()
		switch {
		case res.ExceptionDetails != nil:
			msg := res.ExceptionDetails.Text
			if e := res.ExceptionDetails.Exception; e != nil && e.Description != "" {
				msg = e.Description
			}
			return Accessible{}, fmt.Errorf("selector %s: %s", selector, msg)
		case res.Result == nil || res.Result.ObjectID == "":
			return Accessible{}, fmt.Errorf("no element matches %s", selector)
		}
		ax, err := cdp.Call(ctx, t, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{ObjectID: res.Result.ObjectID})
		if err != nil {
			return Accessible{}, err
		}
		// The subtree's nodes come root first; an element hidden from
		// assistive technology has none, or an ignored one.
		if len(ax.Nodes) == 0 || ax.Nodes[0].Ignored {
			return Accessible{}, fmt.Errorf("%s is not exposed to assistive technology", selector)
		}
		n := ax.Nodes[0]
		a := Accessible{Role: axText(n.Role), Name: axText(n.Name), Value: axText(n.Value), Properties: map[string]string{}}
		for _, p := range n.Properties {
			a.Properties[string(p.Name)] = axText(p.Value)
		}
		return a, nil
	}
}

// axText is the value of v as text: a string unquoted, anything else as
// its JSON.
func axText(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err == nil {
		return s
	}
	if f, err := strconv.ParseFloat(string(v.Value), 64); err == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return string(v.Value)
}
