package pipeline

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseConfigExample(t *testing.T) {
	data, err := os.ReadFile("testdata/pipelines.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig("pipelines.yaml", data)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	for _, name := range []string{"check", "gate", "post"} {
		if c.Pipeline(name) == nil {
			t.Errorf("pipeline %q missing", name)
		}
	}
	gate := c.Pipeline("gate")
	if gate.Manager != Dependent || gate.Window.Initial != DefaultWindow || gate.Window.Floor != DefaultWindowFloor || !gate.DequeueOnNew() {
		t.Errorf("gate = %+v: defaults not applied", gate)
	}
	if s := gate.Report.Success; s == nil || !s.Submit || s.Labels["Verified"] != 2 {
		t.Errorf("gate success report = %+v", s)
	}
	if got := c.QueueOf("mediawiki/extensions/Echo"); got != "integrated" {
		t.Errorf("QueueOf(Echo) = %q", got)
	}
	if got := c.Pipeline("check").Trigger[1].Comment; got != `(?i)^\s*recheck\s*$` {
		t.Errorf("check comment = %q", got)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{
			name: "every problem, sorted by line",
			doc: `pipelines:
  - name: check
    manager: indep
    trigger:
      - event: [comment-added]
        comment: '[x'
        branhc: master
    window: {initial: 2, floor: 5}
  - name: check
    manager: supercedent
    trigger: [{event: [ref-updated]}]
    report:
      success: {submit: true}
`,
			want: []string{
				`f.yaml:3: pipelines[0].manager: unknown manager "indep" (want independent, dependent or supercedent)`,
				"f.yaml:6: pipelines[0].trigger[0].comment: bad regular expression \"[x\": error parsing regexp: missing closing ]: `[x`",
				`f.yaml:7: pipelines[0].trigger[0].branhc: unknown key (did you mean "branch"?)`,
				`f.yaml:9: pipelines[1].name: pipeline "check" is defined twice`,
				`f.yaml:13: pipelines[1].report.success.submit: only a dependent pipeline may submit`,
			},
		},
		{
			name: "a window on a pipeline that has none",
			doc:  "pipelines:\n  - name: check\n    manager: independent\n    trigger: [{event: [patchset-created]}]\n    window: {initial: 5}\n",
			want: []string{`f.yaml:5: pipelines[0].window: a window only applies to dependent pipelines, not to independent ones`},
		},
		{
			name: "a missing key is reported at its parent",
			doc:  "pipelines:\n  - name: lonely\n    manager: independent\n",
			want: []string{`f.yaml:2: pipelines[0].trigger: pipeline "lonely" has no trigger`},
		},
		{
			name: "no pipelines at all is reported at the top",
			doc:  "# shared queues only\nqueues:\n  - name: q\n    projects: [a, a]\n",
			want: []string{
				`f.yaml:2: pipelines: no pipeline is defined`,
				`f.yaml:4: queues[0].projects[1]: project "a" is already in shared queue "q"`,
			},
		},
		{
			name: "a value decoding rejected is not reported again by Compile",
			doc:  "pipelines:\n  - name: x\n    manager: [independent]\n    trigger: {event: x}\n",
			want: []string{
				`f.yaml:3: pipelines[0].manager: expected a string, found a list`,
				`f.yaml:4: pipelines[0].trigger: expected a list, found a mapping`,
			},
		},
		{
			name: "main-config keys are unknown here",
			doc:  "gerrit: {url: x}\npipelines: []\n",
			want: []string{
				`f.yaml:1: gerrit: unknown key (allowed here: pipelines, queues)`,
				`f.yaml:2: pipelines: no pipeline is defined`,
			},
		},
		{
			name: "empty document",
			doc:  "\n",
			want: []string{`f.yaml:1: the document is empty; expected a mapping with keys pipelines, queues`},
		},
		{
			name: "syntax error stops before semantics",
			doc:  "pipelines:\n  - name: x\n   manager: independent\n",
			want: []string{`f.yaml:2: YAML syntax error: did not find expected '-' indicator`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig("f.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if c != nil {
				t.Error("a Config came back with the error")
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestConfigLoadDoesNoIO keeps ParseConfig a function of its bytes.
func TestConfigLoadDoesNoIO(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "configload.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		switch path {
		case "github.com/seakeeper-ci/seakeeper/internal/yamlstrict":
		default:
			t.Errorf("configload.go imports %s; it must stay free of I/O", path)
		}
	}
}
