package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// The manifests against a real kube-apiserver (internal/kubetest): the
// server validates every object, and its RBAC authoriser says what the
// deployed ServiceAccount may do.

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// applyOrder is the order objects are created in: each after those it
// needs (its namespace, the subject and role of a binding, ...).
var applyOrder = []string{
	"Namespace", "ServiceAccount", "Secret", "ConfigMap",
	"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
	"Service", "NetworkPolicy", "StatefulSet",
}

// warnings records the API server's warnings (deprecations, fields it
// ignores).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// server is the cluster as the admin sees it.
type server struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	warn   *warnings
}

func connect(t *testing.T, c *kubetest.Cluster) server {
	t.Helper()
	cfg := rest.CopyConfig(c.AdminConfig())
	s := server{warn: &warnings{}}
	cfg.WarningHandler = s.warn
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatal(err)
	}
	s.mapper = restmapper.NewDiscoveryRESTMapper(groups)
	if s.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

// mapping returns how the server serves m's kind (resource, scope).
func (s server) mapping(t *testing.T, m manifest) *meta.RESTMapping {
	t.Helper()
	gvk := m.obj.GroupVersionKind()
	mp, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s: the API server does not serve %s: %v", m, gvk, err)
	}
	return mp
}

// create creates m strictly (unknown or duplicate fields are errors), as a
// server-side dry run when dryRun is set.
func (s server) create(ctx context.Context, t *testing.T, m manifest, dryRun bool) error {
	t.Helper()
	mp := s.mapping(t, m)
	var ri dynamic.ResourceInterface = s.dyn.Resource(mp.Resource)
	if mp.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = s.dyn.Resource(mp.Resource).Namespace(m.obj.GetNamespace())
	}
	opts := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err := ri.Create(ctx, m.obj, opts)
	return err
}

// sorted returns ms in applyOrder.
func sorted(t *testing.T, ms []manifest) []manifest {
	t.Helper()
	for _, m := range ms {
		if !slices.Contains(applyOrder, m.obj.GetKind()) {
			t.Fatalf("%s: kind %s has no place in applyOrder; add it after what it needs", m, m.obj.GetKind())
		}
	}
	out := slices.Clone(ms)
	slices.SortStableFunc(out, func(a, b manifest) int {
		return slices.Index(applyOrder, a.obj.GetKind()) - slices.Index(applyOrder, b.obj.GetKind())
	})
	return out
}

// relocate returns copies of ms moved from namespace from to namespace to,
// and with suffix appended to the names of cluster-scoped objects and the
// references to them, so that tests sharing a cluster (and -count=N) never
// meet each other's objects. It checks that every namespaced object names
// namespace from explicitly: the kustomization sets no namespace, so
// one without would land in whatever namespace kubectl's context names.
func (s server) relocate(t *testing.T, ms []manifest, from, to, suffix string) []manifest {
	t.Helper()
	out := make([]manifest, len(ms))
	for i, m := range ms {
		o := m.obj.DeepCopy()
		if s.mapping(t, m).Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() != from {
				t.Fatalf("%s: metadata.namespace %q, want %q", m, o.GetNamespace(), from)
			}
			o.SetNamespace(to)
		} else {
			if o.GetNamespace() != "" {
				t.Fatalf("%s: a cluster-scoped object with metadata.namespace %q", m, o.GetNamespace())
			}
			if o.GetKind() == "Namespace" && o.GetName() == from {
				o.SetName(to)
			} else {
				o.SetName(o.GetName() + suffix)
			}
		}
		if kind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind"); kind == "ClusterRole" {
			name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			if err := unstructured.SetNestedField(o.Object, name+suffix, "roleRef", "name"); err != nil {
				t.Fatal(err)
			}
		}
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, sub := range subjects {
			if sm, ok := sub.(map[string]any); ok && sm["namespace"] == from {
				sm["namespace"] = to
			}
		}
		if subjects != nil {
			if err := unstructured.SetNestedSlice(o.Object, subjects, "subjects"); err != nil {
				t.Fatal(err)
			}
		}
		out[i] = manifest{where: m.where, obj: o}
	}
	return out
}

func TestAPIServerAcceptsTheManifests(t *testing.T) {
	c := kubetest.StartShared(t)
	s := connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := load(t)
	ns := c.UniqueName(d.sts.Namespace)
	all := append(d.all, readManifests(t, exampleSecret)...)
	var sts manifest
	for _, m := range sorted(t, s.relocate(t, all, d.sts.Namespace, ns, "-"+ns)) {
		if err := s.create(ctx, t, m, true); err != nil {
			t.Errorf("%s: the API server refuses it: %v", m, err)
		}
		if k := m.obj.GetKind(); k == "Namespace" || k == "ServiceAccount" {
			// A dry run in a namespace that does not exist is refused, and
			// so is a Pod of a ServiceAccount that does not: create these
			// for real.
			if err := s.create(ctx, t, m, false); err != nil {
				t.Fatalf("%s: %v", m, err)
			}
		}
		for _, w := range s.warn.take() {
			t.Errorf("%s: the API server warns: %s", m, w)
		}
		if m.obj.GetKind() == "StatefulSet" {
			sts = m
		}
	}
	// The API server does not validate a StatefulSet's pod template (the
	// controller's Pod creates would fail later, in events); the Pods and
	// claims the controller makes from it are validated: dry-run them.
	for _, m := range controllerObjects(t, sts) {
		if err := s.create(ctx, t, m, true); err != nil {
			t.Errorf("%s: the API server refuses it: %v", m, err)
		}
		for _, w := range s.warn.take() {
			t.Errorf("%s: the API server warns: %s", m, w)
		}
	}
}

// controllerObjects returns what the StatefulSet controller creates for
// pod 0 of sts: a claim per volumeClaimTemplate and the Pod, which mounts
// them (pkg/controller/statefulset: newVersionedStatefulSetPod).
func controllerObjects(t *testing.T, m manifest) []manifest {
	t.Helper()
	sts := typed[appsv1.StatefulSet](t, m)
	name := sts.Name + "-0"
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: *sts.Spec.Template.ObjectMeta.DeepCopy(),
		Spec:       *sts.Spec.Template.Spec.DeepCopy(),
	}
	pod.Name, pod.Namespace = name, sts.Namespace
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = name
	pod.Spec.Hostname, pod.Spec.Subdomain = name, sts.Spec.ServiceName
	var out []manifest
	for _, ct := range sts.Spec.VolumeClaimTemplates {
		claim := &corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: *ct.ObjectMeta.DeepCopy(),
			Spec:       *ct.Spec.DeepCopy(),
		}
		claim.Name, claim.Namespace = ct.Name+"-"+name, sts.Namespace
		out = append(out, unstructuredOf(t, m.where+" volumeClaimTemplate "+ct.Name, claim))
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: ct.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.Name}}})
	}
	return append(out, unstructuredOf(t, m.where+" pod template", pod))
}

func unstructuredOf(t *testing.T, where string, obj any) manifest {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	return manifest{where: where, obj: &unstructured.Unstructured{Object: u}}
}

// access is one question to the RBAC authoriser.
type access struct {
	verb, group, resource, namespace, name string
}

func (a access) String() string {
	s := a.verb + " " + a.resource
	if a.group != "" {
		s += "." + a.group
	}
	if a.name != "" {
		s += " " + a.name
	}
	if a.namespace != "" {
		return s + " in namespace " + a.namespace
	}
	return s + " (cluster-wide)"
}

func TestServiceAccountMayDoWhatTheDaemonDoes(t *testing.T) {
	c := kubetest.StartShared(t)
	c.InstallArgoCRDs(t)
	s := connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := load(t)
	ns := c.UniqueName(d.sts.Namespace)

	// Create the identity and its grants for real: the namespace, the
	// ServiceAccount and the RBAC objects.
	var sa string
	for _, m := range sorted(t, s.relocate(t, d.all, d.sts.Namespace, ns, "-"+ns)) {
		kind := m.obj.GetKind()
		if kind != "Namespace" && kind != "ServiceAccount" && !strings.HasPrefix(m.obj.GetAPIVersion(), "rbac.authorization.k8s.io/") {
			continue
		}
		if kind == "ServiceAccount" {
			sa = m.obj.GetName()
		}
		if err := s.create(ctx, t, m, false); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	if sa != d.sts.Spec.Template.Spec.ServiceAccountName {
		t.Fatalf("the pods run as ServiceAccount %q, the manifests define %q", d.sts.Spec.Template.Spec.ServiceAccountName, sa)
	}
	saConfig := c.ServiceAccount(t, ns, sa)

	// The daemon's own list of what it needs (check-config --reach), with
	// the sample config moved to this test's namespace, its Gerrit part
	// pointed where nothing answers (only the Kubernetes checks count).
	cfg := *d.cfg
	cfg.LeaderElection.Namespace = ns
	dir := t.TempDir()
	cfg.Gerrit.URL, cfg.Gerrit.SSH = "http://127.0.0.1:1/", "127.0.0.1:1"
	cfg.Gerrit.SSHKeyFile = filepath.Join(dir, "no-key")
	cfg.Gerrit.KnownHostsFile = filepath.Join(dir, "no-known-hosts")
	cfg.Gerrit.HTTPPasswordFile = filepath.Join(dir, "no-password")
	// The authoriser learns of new bindings through a cache: ask again
	// until they are seen, within a generous deadline.
	var failed []scheduler.Check
	for deadline := time.Now().Add(time.Minute); ; {
		failed = nil
		for _, ch := range scheduler.Reach(ctx, &cfg, scheduler.ReachOptions{RestConfig: saConfig, Timeout: 20 * time.Second}) {
			if strings.HasPrefix(ch.Name, "kubernetes") && ch.Err != nil {
				failed = append(failed, ch)
			}
		}
		if len(failed) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, ch := range failed {
		t.Errorf("check-config --reach as ServiceAccount %s/%s: %v", ns, sa, ch)
	}

	// What the Argo adapter does (argo/adapter.go, lifecycle.go, watch.go):
	// create, get (adoption), patch (terminate), delete (backstop) where a
	// project's workflows run; list and watch everywhere (one informer).
	// Plus read access to the templates project configs name, and the
	// Lease.
	project := argo.Namespace(cfg.Kubernetes.Namespace, "platform/core")
	lease := cfg.LeaderElection.Name
	var allowed []access
	for _, v := range []string{"create", "get", "list", "watch", "patch", "delete"} {
		allowed = append(allowed, access{v, "argoproj.io", "workflows", project, ""})
	}
	allowed = append(allowed,
		access{"list", "argoproj.io", "workflows", "", ""},
		access{"watch", "argoproj.io", "workflows", "", ""},
		access{"get", "argoproj.io", "workflowtemplates", project, "build"},
		access{"get", "argoproj.io", "clusterworkflowtemplates", "", "build"},
		access{"create", "coordination.k8s.io", "leases", ns, ""},
		access{"get", "coordination.k8s.io", "leases", ns, lease},
		access{"update", "coordination.k8s.io", "leases", ns, lease},
	)
	// And nothing it does not need.
	denied := []access{
		{"update", "argoproj.io", "workflows", project, ""},
		{"create", "argoproj.io", "workflowtemplates", project, ""},
		{"get", "", "secrets", project, ""},
		{"get", "", "secrets", ns, ""},
		{"create", "", "pods", project, ""},
		{"update", "coordination.k8s.io", "leases", ns, "another-lease"},
		{"update", "coordination.k8s.io", "leases", "kube-system", lease},
		{"delete", "coordination.k8s.io", "leases", ns, lease},
	}
	nsCreate := access{"create", "", "namespaces", "", ""}
	if cfg.Kubernetes.CreateNamespaces {
		allowed = append(allowed, nsCreate)
	} else {
		denied = append(denied, nsCreate)
	}

	user := "system:serviceaccount:" + ns + ":" + sa
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	admin := c.AdminClient().AuthorizationV1().SubjectAccessReviews()
	may := func(a access) bool {
		t.Helper()
		r, err := admin.Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authzv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace, Name: a.name},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SubjectAccessReview %v: %v", a, err)
		}
		return r.Status.Allowed
	}
	for _, a := range allowed {
		if !may(a) {
			t.Errorf("ServiceAccount %s/%s may not %v", ns, sa, a)
		}
	}
	// The grants above are seen: a denial now is not the cache lagging.
	for _, a := range denied {
		if may(a) {
			t.Errorf("ServiceAccount %s/%s may %v, which the daemon never does", ns, sa, a)
		}
	}
}
