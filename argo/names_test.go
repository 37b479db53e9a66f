package argo

import (
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

var hashed = regexp.MustCompile(`-[0-9a-f]{8}$`)

func TestNamespace(t *testing.T) {
	long := strings.Repeat("platform/", 10) + "service"
	for _, tc := range []struct {
		template, project string
		want              string // exact, or a prefix when hash is set
		hash              bool
	}{
		{"", "tools", "ci-tools", false},
		{"ci-{project}", "infra-tools", "ci-infra-tools", false},
		{"", "org/app", "ci-org-app-", true},
		{"", "Org/App", "ci-org-app-", true},
		{"", "org_app", "ci-org-app-", true},
		{"", "org.app", "ci-org-app-", true},
		{"", "--weird//name--", "ci-weird-name-", true},
		{"", "ünïcode/ŝtuff", "ci-n-code-tuff-", true},
		{"", long, "ci-platform-platform-platform-platform-platform-platfo-", true},
		{"", "", "ci-", true},
		{"", "/", "ci-", true},
		{"ci", "org/app", "ci", false},
		{"CI-{project}", "tools", "ci-tools-", true},
		{"builds-{project}-ns", "a", "builds-a-ns", false},
		{"{project}", strings.Repeat("a", 63), strings.Repeat("a", 63), false},
		{"{project}", strings.Repeat("a", 64), strings.Repeat("a", 54) + "-", true},
	} {
		got := Namespace(tc.template, tc.project)
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Errorf("Namespace(%q, %q) = %q: %v", tc.template, tc.project, got, errs)
		}
		if tc.hash && (!strings.HasPrefix(got, tc.want) || !hashed.MatchString(got)) || !tc.hash && got != tc.want {
			t.Errorf("Namespace(%q, %q) = %q, want %q (hash suffix: %v)", tc.template, tc.project, got, tc.want, tc.hash)
		}
		if Namespace(tc.template, tc.project) != got {
			t.Errorf("Namespace(%q, %q) is not deterministic", tc.template, tc.project)
		}
	}
	// Projects that sanitise alike never share a namespace: it is a trust
	// boundary.
	seen := map[string]string{}
	for _, p := range []string{"org/app", "org-app", "Org/App", "org_app", "org.app", "org//app", "org/app/", long, long + "x"} {
		ns := Namespace("", p)
		if other, dup := seen[ns]; dup {
			t.Errorf("%q and %q share namespace %s", p, other, ns)
		}
		seen[ns] = p
	}
}

func TestLabelValue(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		hash     bool
	}{
		{"gate-7.0", "gate-7.0", false},
		{"Org_App.v2", "Org_App.v2", false},
		{"", "", false},
		{"org/app", "org-app-", true},
		{"-lead", "lead-", true},
		{"trail.", "trail-", true},
		{"///", "", true},
		{strings.Repeat("x", 63), strings.Repeat("x", 63), false},
		{strings.Repeat("x", 64), strings.Repeat("x", 54) + "-", true},
		{"a/" + strings.Repeat("b", 70), "a-" + strings.Repeat("b", 52) + "-", true},
	} {
		got := LabelValue(tc.in)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q: %v", tc.in, got, errs)
		}
		if tc.hash && (!strings.HasPrefix(got, tc.want) || !regexp.MustCompile(`[0-9a-f]{8}$`).MatchString(got)) || !tc.hash && got != tc.want {
			t.Errorf("LabelValue(%q) = %q, want %q (hash: %v)", tc.in, got, tc.want, tc.hash)
		}
	}
	if LabelValue("org/app") == LabelValue("org-app") {
		t.Error("label values of org/app and org-app collide")
	}
}

func TestWorkflowName(t *testing.T) {
	a := build("gate", 12345, 3, 200)
	name := WorkflowName(a)
	if !regexp.MustCompile(`^sk-gate-12345-3-[0-9a-f]{8}$`).MatchString(name) {
		t.Errorf("name %q", name)
	}
	if WorkflowName(a) != name {
		t.Error("not deterministic")
	}
	b := a
	b.BuildSet = "gate-12345.1"
	if WorkflowName(b) == name {
		t.Error("another buildset of the same change got the same name")
	}
	for _, act := range []pipeline.Action{
		{Pipeline: strings.Repeat("Very_Long.Pipeline/", 8), BuildSet: "x", Change: pipeline.Spec{Project: "p", Number: 2147483647, Patchset: 99999}},
		{Pipeline: "post", BuildSet: "post-1.0", Change: pipeline.Spec{Project: "p", Ref: "refs/heads/main"}},
		{Pipeline: "///", BuildSet: "y", Change: pipeline.Spec{Project: "p", Number: 1, Patchset: 1}},
	} {
		n := WorkflowName(act)
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 || !strings.HasPrefix(n, "sk-") {
			t.Errorf("WorkflowName(%q) = %q: %v", act.Pipeline, n, errs)
		}
	}
	if n := WorkflowName(pipeline.Action{Pipeline: "post", BuildSet: "post-1.0", Change: pipeline.Spec{Project: "p"}}); !regexp.MustCompile(`^sk-post-[0-9a-f]{8}$`).MatchString(n) {
		t.Errorf("ref item name %q", n)
	}
}
