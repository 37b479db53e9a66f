package kubetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ProjectServiceAccount is the ServiceAccount ProjectNamespace creates.
const ProjectServiceAccount = "seakeeper"

// TestLabel marks the namespaces and RBAC objects kubetest creates.
const TestLabel = "kubetest.seakeeper.io/created"

// tokenLifetime is how long a ServiceAccount token from kubetest is valid.
const tokenLifetime = 6 * time.Hour

// knownGroups gives the API group of the resources that may be named
// without one in a verbs map. Others are written resource.group, as
// kubectl does ("leases.coordination.k8s.io").
var knownGroups = map[string]string{
	// core
	"pods": "", "configmaps": "", "secrets": "", "serviceaccounts": "",
	"services": "", "events": "", "namespaces": "", "resourcequotas": "",
	"limitranges": "", "persistentvolumeclaims": "", "endpoints": "",
	// Argo
	"workflows": "argoproj.io", "workflowtemplates": "argoproj.io",
	"clusterworkflowtemplates": "argoproj.io", "cronworkflows": "argoproj.io",
	"workflowtaskresults": "argoproj.io", "workflowtasksets": "argoproj.io",
	"workflowartifactgctasks": "argoproj.io", "workfloweventbindings": "argoproj.io",
	// leader election
	"leases": "coordination.k8s.io",
}

// ProjectNamespace creates the namespace name (it must not exist yet) with
// a ServiceAccount named ProjectServiceAccount that may do exactly verbs
// there, and returns a configuration authenticating as that ServiceAccount
// with a token from the TokenRequest API. verbs maps a resource to its
// verbs, e.g. "workflows": {"create", "get", "list", "watch", "patch"};
// a resource is a plural name ("workflows", "pods/log") whose API group is
// known (Argo's, core, "leases"), or resource.group
// ("leases.coordination.k8s.io", "workflows.argoproj.io/status").
//
// A verb missing from verbs makes the corresponding call fail with
// Forbidden, which is the point.
func (c *Cluster) ProjectNamespace(tb testing.TB, name string, verbs map[string][]string) *rest.Config {
	tb.Helper()
	c.CreateNamespace(tb, name)
	cfg := c.ServiceAccount(tb, name, ProjectServiceAccount)
	c.Grant(tb, name, name, ProjectServiceAccount, verbs)
	return cfg
}

// CreateNamespace creates a namespace, failing tb if it exists already
// (tests sharing a cluster must use distinct namespaces: see UniqueName).
func (c *Cluster) CreateNamespace(tb testing.TB, name string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{TestLabel: "true"}},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		tb.Fatalf("kubetest: namespace %s already exists: tests sharing a cluster must use distinct namespaces", name)
	}
	if err != nil {
		tb.Fatalf("kubetest: creating namespace %s: %v", name, err)
	}
}

// ServiceAccount creates the ServiceAccount namespace/name (and the
// namespace) if missing, and returns a configuration authenticating as it
// with a fresh token. It may do nothing until granted something (Grant).
func (c *Cluster) ServiceAccount(tb testing.TB, namespace, name string) *rest.Config {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{TestLabel: "true"}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatalf("kubetest: creating namespace %s: %v", namespace, err)
	}
	_, err = c.admin.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatalf("kubetest: creating ServiceAccount %s/%s: %v", namespace, name, err)
	}
	expiry := int64(tokenLifetime / time.Second)
	tr, err := c.admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("kubetest: TokenRequest for %s/%s: %v", namespace, name, err)
	}
	cfg := c.tokenConfig(tr.Status.Token)

	// The token authenticator looks the ServiceAccount up through a cache:
	// wait until it is known, so the first real call cannot get a 401.
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	want := serviceAccountUser(namespace, name)
	err = poll(ctx, func() (bool, error) {
		r, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if apierrors.IsUnauthorized(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if got := r.Status.UserInfo.Username; got != want {
			return false, fmt.Errorf("token authenticates as %q, not %q", got, want)
		}
		return true, nil
	})
	if err != nil {
		tb.Fatalf("kubetest: ServiceAccount %s/%s token: %v", namespace, name, err)
	}
	return cfg
}

// Grant lets the ServiceAccount saNamespace/saName do verbs (as in
// ProjectNamespace) in namespace, or in every namespace and on
// cluster-scoped resources such as namespaces when namespace is "". It
// creates a new Role (ClusterRole) and binding each time; grants add up.
// It returns once the authoriser allows every granted verb.
func (c *Cluster) Grant(tb testing.TB, namespace, saNamespace, saName string, verbs map[string][]string) {
	tb.Helper()
	rules, checks, err := policyRules(verbs)
	if err != nil {
		tb.Fatalf("kubetest: Grant: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta := metav1.ObjectMeta{
		Name:   fmt.Sprintf("kubetest-%s-%d", saName, c.seq.Add(1)),
		Labels: map[string]string{TestLabel: "true"},
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNamespace, Name: saName}}
	rbac := c.admin.RbacV1()
	if namespace == "" {
		_, err = rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{})
		if err == nil {
			_, err = rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: meta, Subjects: subjects,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: meta.Name},
			}, metav1.CreateOptions{})
		}
	} else {
		meta.Namespace = namespace
		_, err = rbac.Roles(namespace).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{})
		if err == nil {
			_, err = rbac.RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: meta, Subjects: subjects,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: meta.Name},
			}, metav1.CreateOptions{})
		}
	}
	if err != nil {
		tb.Fatalf("kubetest: granting %v to %s/%s: %v", verbs, saNamespace, saName, err)
	}

	// The RBAC authoriser works from a cache too: wait until it allows
	// every granted verb, so a test cannot fail by racing it.
	user := serviceAccountUser(saNamespace, saName)
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + saNamespace, "system:authenticated"}
	for _, attr := range checks {
		attr.Namespace = namespace
		err := poll(ctx, func() (bool, error) {
			r, err := c.admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
				Spec: authzv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &attr},
			}, metav1.CreateOptions{})
			return err == nil && r.Status.Allowed, err
		})
		if err != nil {
			tb.Fatalf("kubetest: %s still may not %s %s after the grant: %v", user, attr.Verb, attr.Resource, err)
		}
	}
}

func serviceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// policyRules turns a verbs map into one rule per resource, in resource
// order, and the access checks that show the rules are in effect.
func policyRules(verbs map[string][]string) ([]rbacv1.PolicyRule, []authzv1.ResourceAttributes, error) {
	if len(verbs) == 0 {
		return nil, nil, fmt.Errorf("no resources")
	}
	keys := make([]string, 0, len(verbs))
	for k := range verbs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rules []rbacv1.PolicyRule
	var checks []authzv1.ResourceAttributes
	for _, key := range keys {
		vs := verbs[key]
		if len(vs) == 0 || slices.Contains(vs, "") {
			return nil, nil, fmt.Errorf("resource %q: empty verb list or verb", key)
		}
		base, sub, _ := strings.Cut(key, "/")
		resource, group, dotted := strings.Cut(base, ".")
		if !dotted {
			var ok bool
			if group, ok = knownGroups[resource]; !ok {
				return nil, nil, fmt.Errorf("resource %q: API group unknown, write it as %s.<group>", key, resource)
			}
		}
		if resource == "" {
			return nil, nil, fmt.Errorf("resource %q: empty name", key)
		}
		ruleRes := resource
		if sub != "" {
			ruleRes += "/" + sub
		}
		rules = append(rules, rbacv1.PolicyRule{
			APIGroups: []string{group}, Resources: []string{ruleRes}, Verbs: slices.Sorted(slices.Values(vs)),
		})
		for _, v := range vs {
			checks = append(checks, authzv1.ResourceAttributes{Verb: v, Group: group, Resource: resource, Subresource: sub})
		}
	}
	return rules, checks, nil
}

// poll calls f every 20ms until it returns true or an error, or ctx ends.
func poll(ctx context.Context, f func() (bool, error)) error {
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
