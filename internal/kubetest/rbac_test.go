package kubetest

import (
	"reflect"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

func TestPolicyRules(t *testing.T) {
	rules, checks, err := policyRules(map[string][]string{
		"workflows":                    {"watch", "create"},
		"pods/log":                     {"get"},
		"leases.coordination.k8s.io":   {"update"},
		"workflows.argoproj.io/status": {"patch"},
		"events.events.k8s.io":         {"create"},
		"namespaces":                   {"*"},
		"resourcequotas.":              {"get"}, // core, explicitly
		"widgets.example.com/scale":    {"get"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"update"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"*"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"resourcequotas"}, Verbs: []string{"get"}},
		{APIGroups: []string{"example.com"}, Resources: []string{"widgets/scale"}, Verbs: []string{"get"}},
		{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflows"}, Verbs: []string{"create", "watch"}},
		{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflows/status"}, Verbs: []string{"patch"}},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("rules:\n got %v\nwant %v", rules, want)
	}
	if len(checks) != 9 {
		t.Errorf("%d checks, want one per verb (9): %v", len(checks), checks)
	}
	wantCheck := authzv1.ResourceAttributes{Verb: "get", Resource: "pods", Subresource: "log"}
	found := false
	for _, c := range checks {
		found = found || c == wantCheck
	}
	if !found {
		t.Errorf("no check %+v in %+v", wantCheck, checks)
	}

	for in, wantErr := range map[string]string{
		"widgets":   "API group unknown",
		".argoproj": "empty name",
	} {
		_, _, err := policyRules(map[string][]string{in: {"get"}})
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: got %v, want an error containing %q", in, err, wantErr)
		}
	}
	for _, verbs := range [][]string{nil, {""}} {
		if _, _, err := policyRules(map[string][]string{"workflows": verbs}); err == nil {
			t.Errorf("verbs %q accepted", verbs)
		}
	}
	if _, _, err := policyRules(nil); err == nil {
		t.Error("empty map accepted")
	}
}
