package yamlstrict

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type tWindow struct {
	Initial int     `yaml:"initial"`
	Factor  float64 `yaml:"factor"`
}

type tReport struct {
	Labels  map[string]int `yaml:"labels"`
	Submit  bool           `yaml:"submit"`
	Message string         `yaml:"message"`
}

type tTrigger struct {
	Event   []string `yaml:"event"`
	Comment string   `yaml:"comment"`
}

type tPipeline struct {
	Name    string              `yaml:"name"`
	Trigger []tTrigger          `yaml:"trigger"`
	Window  tWindow             `yaml:"window"`
	Report  map[string]*tReport `yaml:"report"`
	Enabled *bool               `yaml:"enabled"`
	Timeout time.Duration       `yaml:"timeout"`
	Count   uint8               `yaml:"count"`
}

type tPipelines struct {
	Pipelines []tPipeline `yaml:"pipelines"`
	Queues    []string    `yaml:"queues"`
}

type tExtra struct {
	StateDir string `yaml:"state-dir"`
}

type tConfig struct {
	Title      string `yaml:"title"`
	tPipelines `yaml:",inline"`
	Extra      tExtra `yaml:",inline"`
	Any        any    `yaml:"any"`
	Skipped    string `yaml:"-"`
	Untagged   string
	hidden     int
}

func decodeConfig(t *testing.T, doc string) (*tConfig, *Lines, []string) {
	t.Helper()
	var c tConfig
	lines, errs := Decode("c.yaml", []byte(doc), &c)
	if lines == nil {
		t.Fatal("Decode returned nil Lines")
	}
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	return &c, lines, got
}

func TestDecodeValid(t *testing.T) {
	doc := `title: demo
state-dir: /var/lib/x
untagged: yes
any: {a: [1, two]}
pipelines:
  - name: check
    enabled: false
    timeout: 90s
    count: 7
    window: {initial: 5, factor: 2}
    trigger:
      - event: [patchset-created, comment-added]
        comment: '(?i)^\s*recheck\s*$'
    report:
      success:
        labels: {Verified: +1}
        message: ok
      start:
queues: [a, b]
`
	c, lines, errs := decodeConfig(t, doc)
	if len(errs) != 0 {
		t.Fatalf("unexpected errors:\n%s", strings.Join(errs, "\n"))
	}
	f := false
	want := tConfig{
		Title:      "demo",
		Extra:      tExtra{StateDir: "/var/lib/x"},
		Untagged:   "yes",
		Any:        map[string]any{"a": []any{1, "two"}},
		tPipelines: tPipelines{Queues: []string{"a", "b"}},
	}
	want.Pipelines = []tPipeline{{
		Name: "check", Enabled: &f, Timeout: 90 * time.Second, Count: 7,
		Window:  tWindow{Initial: 5, Factor: 2},
		Trigger: []tTrigger{{Event: []string{"patchset-created", "comment-added"}, Comment: `(?i)^\s*recheck\s*$`}},
		Report:  map[string]*tReport{"success": {Labels: map[string]int{"Verified": 1}, Message: "ok"}, "start": nil},
	}}
	if c.hidden != 0 || c.Skipped != "" {
		t.Errorf("unexported or skipped fields were set: %+v", c)
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", *c, want)
	}
	for path, line := range map[string]int{
		"":                                   1,
		"title":                              1,
		"state-dir":                          2,
		"pipelines":                          5,
		"pipelines[0]":                       6,
		"pipelines[0].name":                  6,
		"pipelines[0].window.factor":         10,
		"pipelines[0].trigger[0]":            12,
		"pipelines[0].trigger[0].event[1]":   12,
		"pipelines[0].trigger[0].comment":    13,
		"pipelines[0].report.success.labels": 16,
		"pipelines[0].report.success.labels.Verified": 16,
		"pipelines[0].report.start":                   18,
		"queues[1]":                                   19,
	} {
		if p, ok := lines.Lookup(path); !ok || p.Line != line {
			t.Errorf("Lookup(%q) = %v, %v; want line %d", path, p, ok, line)
		}
	}
	// Paths not written fall back to the nearest ancestor that was.
	for path, line := range map[string]int{
		"pipelines[0].report.success.submit": 15,
		"pipelines[0].manager":               6,
		"pipelines[3].name":                  5,
		"gerrit.url":                         1,
		"pipelines[0].window.initial.x[2]":   10,
	} {
		if got := lines.Line(path); got != line {
			t.Errorf("Line(%q) = %d, want %d", path, got, line)
		}
	}
	if p, ok := lines.Lookup("pipelines[0].window.initial"); !ok || p.Column != 14 {
		t.Errorf("column of window.initial = %v, want 14", p)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{
			name: "unknown keys everywhere, all reported",
			doc: `titel: x
pipelines:
  - name: a
    trigger:
      - event: [x]
        commnet: recheck
    windw: {}
  - name: b
    report:
      success: {lables: {}}
stat_dir: /x
`,
			want: []string{
				`c.yaml:1: titel: unknown key (did you mean "title"?)`,
				`c.yaml:6: pipelines[0].trigger[0].commnet: unknown key (did you mean "comment"?)`,
				`c.yaml:7: pipelines[0].windw: unknown key (did you mean "window"?)`,
				`c.yaml:10: pipelines[1].report.success.lables: unknown key (did you mean "labels"?)`,
				`c.yaml:11: stat_dir: unknown key (did you mean "state-dir"?)`,
			},
		},
		{
			name: "unknown key without a near miss lists the allowed keys",
			doc:  "pipelines:\n  - trigger:\n      - colour: red\n",
			want: []string{`c.yaml:3: pipelines[0].trigger[0].colour: unknown key (allowed here: comment, event)`},
		},
		{
			name: "wrong kinds",
			doc: `pipelines:
  name: a
queues:
  a: b
title: [x]
`,
			want: []string{
				`c.yaml:2: pipelines: expected a list, found a mapping`,
				`c.yaml:4: queues: expected a list, found a mapping`,
				`c.yaml:5: title: expected a string, found a list`,
			},
		},
		{
			name: "list where a mapping belongs",
			doc:  "pipelines:\n  - window: [1, 2]\n    report:\n      - success\n",
			want: []string{
				`c.yaml:2: pipelines[0].window: expected a mapping, found a list`,
				`c.yaml:4: pipelines[0].report: expected a mapping, found a list`,
			},
		},
		{
			name: "bad scalars",
			doc: `pipelines:
  - window:
      initial: abc
      factor: fast
    enabled: yes
    timeout: 30
    count: 300
  - window: {initial: "5", factor: .nan}
    count: -1
    enabled: 1
    timeout: {}
    report:
      success:
        labels: {Verified: one, Code-Review: 2.5}
`,
			want: []string{
				`c.yaml:3: pipelines[0].window.initial: expected an integer, found "abc"`,
				`c.yaml:4: pipelines[0].window.factor: expected a number, found "fast"`,
				`c.yaml:5: pipelines[0].enabled: expected true or false, found "yes"`,
				`c.yaml:6: pipelines[0].timeout: expected a duration such as 90s, 15m or 24h, found "30"`,
				`c.yaml:7: pipelines[0].count: 300 is out of range`,
				`c.yaml:8: pipelines[1].window.initial: expected an integer, found the string "5"`,
				`c.yaml:8: pipelines[1].window.factor: expected a finite number, found ".nan"`,
				`c.yaml:9: pipelines[1].count: expected an integer of at least 0, found "-1"`,
				`c.yaml:10: pipelines[1].enabled: expected true or false, found "1"`,
				`c.yaml:11: pipelines[1].timeout: expected a duration, found a mapping`,
				`c.yaml:14: pipelines[1].report.success.labels.Verified: expected an integer, found "one"`,
				`c.yaml:14: pipelines[1].report.success.labels.Code-Review: expected an integer, found "2.5"`,
			},
		},
		{
			name: "duplicate keys",
			doc:  "title: a\npipelines:\n  - name: x\n    name: y\ntitle: b\n",
			want: []string{
				`c.yaml:4: pipelines[0].name: duplicate key (first written on line 3); the second one is ignored`,
				`c.yaml:5: title: duplicate key (first written on line 1); the second one is ignored`,
			},
		},
		{
			name: "unexported and skipped fields are not keys",
			doc:  "hidden: 1\nSkipped: x\n-: y\n",
			want: []string{
				`c.yaml:1: hidden: unknown key (allowed here: any, pipelines, queues, state-dir, title, untagged)`,
				`c.yaml:2: Skipped: unknown key (allowed here: any, pipelines, queues, state-dir, title, untagged)`,
				`c.yaml:3: -: unknown key (allowed here: any, pipelines, queues, state-dir, title, untagged)`,
			},
		},
		{
			name: "non-string key",
			doc:  "[a]: 1\n",
			want: []string{`c.yaml:1: a key must be a plain string, not a list`},
		},
		{
			name: "custom tag",
			doc:  "title: !secret x\n",
			want: []string{`c.yaml:1: title: unsupported YAML tag !secret`},
		},
		{
			name: "empty document",
			doc:  "",
			want: []string{`c.yaml:1: the document is empty; expected a mapping with keys any, pipelines, queues, state-dir, title, untagged`},
		},
		{
			name: "comments only",
			doc:  "# nothing here\n\n",
			want: []string{`c.yaml:1: the document is empty; expected a mapping with keys any, pipelines, queues, state-dir, title, untagged`},
		},
		{
			name: "top level is a list",
			doc:  "\n- a\n- b\n",
			want: []string{`c.yaml:2: the top level must be a mapping with keys any, pipelines, queues, state-dir, title, untagged, not a list`},
		},
		{
			name: "top level is a scalar",
			doc:  "hello\n",
			want: []string{`c.yaml:1: the top level must be a mapping with keys any, pipelines, queues, state-dir, title, untagged, not "hello"`},
		},
		{
			name: "two documents",
			doc:  "title: a\n---\ntitle: b\n",
			want: []string{`c.yaml:2: a second YAML document starts here; the file must hold exactly one`},
		},
		{
			name: "scanner error",
			doc:  "title: a\n  bad: b\n",
			want: []string{`c.yaml:2: YAML syntax error: mapping values are not allowed in this context`},
		},
		{
			name: "parser error is numbered from 1",
			doc:  "title: a\n\n\nqueues: [a\n",
			want: []string{`c.yaml:4: YAML syntax error: did not find expected ',' or ']'`},
		},
		{
			name: "tab indentation",
			doc:  "title: a\n\tqueues: []\n",
			want: []string{`c.yaml:2: YAML syntax error: found a tab character that violates indentation`},
		},
		{
			name: "alias inside its own anchor",
			doc:  "pipelines:\n  - &p {name: a, <<: *p}\n",
			want: []string{`c.yaml:2: pipelines[0]: alias *p is used inside its own anchor`},
		},
		{
			name: "merge of a scalar",
			doc:  "pipelines:\n  - <<: 3\n",
			want: []string{`c.yaml:2: pipelines[0]: a merge (<<) needs a mapping or a list of mappings, found "3"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, got := decodeConfig(t, tc.doc)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestDecodeKeepsDefaultsAndNulls(t *testing.T) {
	c := tConfig{Title: "default", Extra: tExtra{StateDir: "/default"}, tPipelines: tPipelines{Queues: []string{"q"}}}
	lines, errs := Decode("c.yaml", []byte("title:\nqueues:\n"), &c)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if c.Title != "default" || c.Extra.StateDir != "/default" || c.Queues != nil {
		t.Errorf("got %+v: a null scalar must keep its default, a null list must clear it", c)
	}
	if lines.Line("queues") != 2 {
		t.Errorf("queues line = %d", lines.Line("queues"))
	}
}

func TestDecodeAliasesAndMerges(t *testing.T) {
	doc := `pipelines:
  - name: check
    report: &reports
      success: &ok {labels: {Verified: 1}, message: fine}
      failure: {labels: {Verified: -1}}
  - name: gate
    report:
      <<: *reports
      success:
        <<: *ok
        submit: true
  - <<: [{name: first, count: 1}, {name: second, timeout: 1m}]
    name: post
`
	c, lines, errs := decodeConfig(t, doc)
	if len(errs) != 0 {
		t.Fatalf("unexpected errors:\n%s", strings.Join(errs, "\n"))
	}
	gate := c.Pipelines[1]
	if s := gate.Report["success"]; s == nil || !s.Submit || s.Message != "fine" || s.Labels["Verified"] != 1 {
		t.Errorf("gate success = %+v", s)
	}
	if f := gate.Report["failure"]; f == nil || f.Labels["Verified"] != -1 {
		t.Errorf("gate failure = %+v", f)
	}
	if c.Pipelines[0].Report["success"].Submit {
		t.Error("merging into a copy changed the anchored original")
	}
	if p := c.Pipelines[2]; p.Name != "post" || p.Count != 1 || p.Timeout != time.Minute {
		t.Errorf("post = %+v", p)
	}
	// An explicit key keeps its own line; a merged one points at its anchor.
	if l := lines.Line("pipelines[1].report.success"); l != 9 {
		t.Errorf("line of overridden key = %d, want 9", l)
	}
	if l := lines.Line("pipelines[1].report.failure"); l != 5 {
		t.Errorf("line of merged key = %d, want 5", l)
	}
}

func TestDecodeAliasBombStops(t *testing.T) {
	doc := `a: &a {n: [{}, {}, {}, {}, {}, {}, {}, {}, {}]}
b: &b {n: [*a, *a, *a, *a, *a, *a, *a, *a, *a]}
c: &c {n: [*b, *b, *b, *b, *b, *b, *b, *b, *b]}
d: &d {n: [*c, *c, *c, *c, *c, *c, *c, *c, *c]}
e: &e {n: [*d, *d, *d, *d, *d, *d, *d, *d, *d]}
f: &f {n: [*e, *e, *e, *e, *e, *e, *e, *e, *e]}
g: &g {n: [*f, *f, *f, *f, *f, *f, *f, *f, *f]}
h: {n: [*g, *g, *g, *g, *g, *g, *g, *g, *g]}
`
	type nest struct {
		N []nest `yaml:"n"`
	}
	start := time.Now()
	_, errs := Decode("bomb.yaml", []byte(doc), &map[string]nest{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "too many values") {
		t.Errorf("errors = %v, want one too-many-values error", errs)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestDecodeCapsErrors(t *testing.T) {
	doc := "queues: [" + strings.Repeat("[], ", 500) + "]\n"
	_, errs := Decode("many.yaml", []byte(doc), &tConfig{})
	if len(errs) != maxErrors+1 || !strings.Contains(errs[len(errs)-1].Error(), "too many problems") {
		t.Errorf("got %d errors, last %v", len(errs), errs[len(errs)-1])
	}
}

func TestDecodeRejectsBadTargets(t *testing.T) {
	var notPointer tConfig
	if _, errs := Decode("x.yaml", []byte("title: a\n"), notPointer); len(errs) != 1 {
		t.Errorf("non-pointer: %v", errs)
	}
	type withChan struct {
		C chan int `yaml:"c"`
	}
	_, errs := Decode("x.yaml", []byte("c: 1\n"), &withChan{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "cannot decode into Go type chan int") {
		t.Errorf("chan: %v", errs)
	}
	type dup struct {
		A string `yaml:"a"`
		B string `yaml:"a"`
	}
	_, errs = Decode("x.yaml", []byte("a: 1\n"), &dup{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `two fields for key "a"`) {
		t.Errorf("dup: %v", errs)
	}
}

func TestReported(t *testing.T) {
	_, lines, _ := decodeConfig(t, "pipelines:\n  - window: 3\n    nme: x\n")
	for path, want := range map[string]bool{
		"pipelines[0].window":         true,
		"pipelines[0].window.initial": true,
		"pipelines[0].nme":            false, // unknown keys do not hide semantic errors
		"pipelines[0].name":           false,
		"pipelines":                   false,
	} {
		if got := lines.Reported(path); got != want {
			t.Errorf("Reported(%q) = %v, want %v", path, got, want)
		}
	}
	_, lines, _ = decodeConfig(t, "")
	if !lines.Reported("pipelines") {
		t.Error("an empty document must cover every path")
	}
}
