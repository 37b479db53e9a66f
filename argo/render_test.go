package argo

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files of the render tests")

// gateAction is a gate item testing lib's change 11 and app's change 12345
// together.
func gateAction() pipeline.Action {
	lib := pipeline.Spec{Project: "org/lib", Branch: "main", Number: 11, Patchset: 2, Ref: "refs/changes/11/11/2", Commit: "aaaa"}
	app := pipeline.Spec{Project: "org/app", Branch: "main", Number: 12345, Patchset: 3, Ref: "refs/changes/45/12345/3", Commit: "bbbb"}
	return pipeline.Action{ID: "build/gate-7.0", Kind: pipeline.ActBuild, Pipeline: "gate", Queue: "integrated", Item: "gate-7",
		BuildSet: "gate-7.0", Change: app, Changes: []pipeline.Spec{lib, app},
		Commits:  []pipeline.ProjectCommit{{Project: "org/lib", Branch: "main", Commit: "1111"}, {Project: "org/app", Branch: "main", Commit: "2222"}},
		Priority: 200}
}

func golden(t *testing.T, name string, wf *wfv1.Workflow) {
	t.Helper()
	got, err := json.MarshalIndent(wf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Render ./argo/ -update to create it)", err)
	}
	if strings.TrimSpace(string(want)) != string(got) {
		t.Errorf("%s differs from the rendering:\n%s", path, got)
	}
}

func params(wf *wfv1.Workflow) map[string]string {
	out := map[string]string{}
	for _, p := range wf.Spec.Arguments.Parameters {
		out[p.Name] = p.Value.String()
	}
	return out
}

func TestRenderTemplateRefContract(t *testing.T) {
	pc, err := ParseProjectConfig(ConfigFileName, "s", []byte("workflowTemplateRef: {name: ci, clusterScope: true}\ntimeout: 48h\nparameters: {lint: strict}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := pc.For("gate")
	o := RenderOptions{InternalURL: "http://sk.internal:8081/", TTL: 2 * time.Hour}
	wf, err := o.Render(gateAction(), w)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "render-templateref.golden.json", wf)

	if wf.Namespace != Namespace("", "org/app") || wf.Name != WorkflowName(gateAction()) || !strings.HasPrefix(wf.Name, "sk-gate-12345-3-") {
		t.Errorf("name %s/%s", wf.Namespace, wf.Name)
	}
	for k, want := range map[string][2]string{ // label, annotation
		LabelPipeline: {"gate", "gate"},
		LabelProject:  {LabelValue("org/app"), "org/app"},
		LabelChange:   {"12345", "12345"},
		LabelPatchset: {"3", "3"},
		LabelItem:     {"gate-7", "gate-7"},
		LabelBuildSet: {"gate-7.0", "gate-7.0"},
	} {
		if wf.Labels[k] != want[0] || wf.Annotations[k] != want[1] {
			t.Errorf("%s: label %q annotation %q, want %q", k, wf.Labels[k], wf.Annotations[k], want)
		}
	}
	if len(wf.Labels) != 6 {
		t.Errorf("labels %v", wf.Labels)
	}
	p := params(wf)
	for k, want := range map[string]string{
		"seakeeper-project":  "org/app",
		"seakeeper-branch":   "main",
		"seakeeper-change":   "12345",
		"seakeeper-patchset": "3",
		"seakeeper-pipeline": "gate",
		"seakeeper-git-url":  "http://sk.internal:8081/git/org/app",
		"seakeeper-ref":      "refs/seakeeper/gate-7.0",
		"seakeeper-commit":   "2222",
		"lint":               "strict",
	} {
		if p[k] != want {
			t.Errorf("parameter %s = %q, want %q", k, p[k], want)
		}
	}
	var changes []ChangeParam
	if err := json.Unmarshal([]byte(p["seakeeper-changes"]), &changes); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[0] != (ChangeParam{Project: "org/lib", Branch: "main", Change: 11, Patchset: 2, Ref: "refs/changes/11/11/2",
		Revision: "aaaa", GitURL: "http://sk.internal:8081/git/org/lib", SeakeeperRef: "refs/seakeeper/gate-7.0", Commit: "1111"}) ||
		changes[1].Commit != "2222" || changes[1].Change != 12345 {
		t.Errorf("changes %+v", changes)
	}
	s := wf.Spec
	if s.WorkflowTemplateRef == nil || s.WorkflowTemplateRef.Name != "ci" || !s.WorkflowTemplateRef.ClusterScope || len(s.Templates) != 0 {
		t.Errorf("template ref %+v", s)
	}
	if *s.Priority != 200 || *s.TTLStrategy.SecondsAfterCompletion != 7200 || s.PodGC.Strategy != wfv1.PodGCOnPodCompletion ||
		*s.ActiveDeadlineSeconds != int64(DefaultMaxTimeout/time.Second) || s.Shutdown != "" || s.ServiceAccountName != "" {
		t.Errorf("forced fields %+v", s)
	}
}

func TestRenderInlineSpec(t *testing.T) {
	pc, err := ParseProjectConfig(ConfigFileName, "s", []byte(`workflow:
  spec:
    entrypoint: main
    arguments: {parameters: [{name: lint, value: loose}, {name: target, value: all}]}
    templates:
      - name: main
        container: {image: alpine, command: [sh, -c, "git fetch {{workflow.parameters.seakeeper-git-url}}"]}
parameters: {lint: strict}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := pc.For("check")
	act := gateAction()
	act.Pipeline, act.Priority, act.Changes = "check", 100, nil
	wf, err := RenderOptions{NamespaceTemplate: "ci", InternalURL: "http://sk"}.Render(act, w)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "render-inline.golden.json", wf)
	p := params(wf)
	if p["lint"] != "strict" || p["target"] != "all" || p["seakeeper-pipeline"] != "check" || wf.Namespace != "ci" {
		t.Errorf("params %v ns %s", p, wf.Namespace)
	}
	if wf.Spec.WorkflowTemplateRef != nil || wf.Spec.Entrypoint != "main" || *wf.Spec.ActiveDeadlineSeconds != 3600 ||
		*wf.Spec.Priority != 100 || wf.Spec.PodGC == nil || wf.Spec.TTLStrategy == nil {
		t.Errorf("spec %+v", wf.Spec)
	}
	// Rendering must not change the shared project config.
	if len(w.Spec.Arguments.Parameters) != 2 || w.Spec.Priority != nil || w.Spec.Arguments.Parameters[0].Value.String() != "loose" {
		t.Errorf("the project config was modified: %+v", w.Spec)
	}
}

func TestRenderSeveralBranchesOfOneProject(t *testing.T) {
	act := gateAction()
	act.Changes[0].Project, act.Changes[0].Branch = "org/app", "stable"
	w := &PipelineWorkflow{TemplateRef: &wfv1.WorkflowTemplateRef{Name: "ci"}}
	wf, err := RenderOptions{}.Render(act, w)
	if err != nil {
		t.Fatal(err)
	}
	var changes []ChangeParam
	if err := json.Unmarshal([]byte(params(wf)["seakeeper-changes"]), &changes); err != nil {
		t.Fatal(err)
	}
	if changes[0].SeakeeperRef != "refs/seakeeper-branch/gate-7.0/stable" || changes[1].SeakeeperRef != "refs/seakeeper-branch/gate-7.0/main" {
		t.Errorf("refs %+v", changes)
	}
}

func TestRenderRefusesBadInput(t *testing.T) {
	w := &PipelineWorkflow{TemplateRef: &wfv1.WorkflowTemplateRef{Name: "ci"}}
	if _, err := (RenderOptions{}).Render(pipeline.Action{Pipeline: "gate"}, w); err == nil {
		t.Error("an action without buildset rendered")
	}
	if _, err := (RenderOptions{}).Render(gateAction(), &PipelineWorkflow{}); err == nil {
		t.Error("a workflow without source rendered")
	}
}
