package kubetest_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	wfclientset "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

func argoClient(t *testing.T, cfg *rest.Config) wfclientset.Interface {
	t.Helper()
	c, err := wfclientset.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func workflow(name string, labels map[string]string) *wfv1.Workflow {
	return &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: wfv1.WorkflowSpec{
			Entrypoint: "main",
			Arguments: wfv1.Arguments{Parameters: []wfv1.Parameter{
				{Name: "seakeeper-change", Value: wfv1.AnyStringPtr("12345")},
			}},
			Templates: []wfv1.Template{{
				Name:      "main",
				Container: &corev1.Container{Image: "alpine", Command: []string{"true"}},
			}},
		},
	}
}

// TestWorkflowsWithLeastPrivilege is the tier's reason to exist: a
// ServiceAccount without "delete" cannot delete, and can do what it was
// granted, watches with label selectors included.
func TestWorkflowsWithLeastPrivilege(t *testing.T) {
	c := kubetest.StartShared(t)
	c.InstallArgoCRDs(t)
	c.InstallArgoCRDs(t) // idempotent
	ctx := ctxFor(t)

	ns := c.UniqueName("ci-kubetest-rbac")
	saCfg := c.ProjectNamespace(t, ns, map[string][]string{
		"workflows": {"create", "get", "list", "watch", "patch"},
	})
	admin := argoClient(t, c.AdminConfig())
	sa := argoClient(t, saCfg).ArgoprojV1alpha1().Workflows(ns)

	byAdmin, err := admin.ArgoprojV1alpha1().Workflows(ns).Create(ctx,
		workflow("made-by-admin", map[string]string{"seakeeper.io/item": "0"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("admin create: %v", err)
	}

	// Granted: get, and the object round-trips through the minimal CRD.
	got, err := sa.Get(ctx, byAdmin.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if p := got.Spec.Arguments.Parameters; len(p) != 1 || p[0].Value.String() != "12345" ||
		got.Labels["seakeeper.io/item"] != "0" || got.Spec.Templates[0].Container.Command[0] != "true" {
		t.Fatalf("workflow did not round-trip: labels %v, spec %+v", got.Labels, got.Spec)
	}

	// Not granted: delete, workflows elsewhere, other resources.
	err = sa.Delete(ctx, byAdmin.Name, metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("delete without the verb: got %v, want Forbidden", err)
	}
	_, err = argoClient(t, saCfg).ArgoprojV1alpha1().Workflows("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list in another namespace: got %v, want Forbidden", err)
	}
	_, err = argoClient(t, saCfg).ArgoprojV1alpha1().WorkflowTemplates(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list workflowtemplates: got %v, want Forbidden", err)
	}

	// Granted: list, watch with a label selector, create.
	list, err := sa.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("list: %d items, want 1", len(list.Items))
	}
	w, err := sa.Watch(ctx, metav1.ListOptions{
		LabelSelector:   "seakeeper.io/item=1",
		ResourceVersion: list.ResourceVersion,
	})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()
	if _, err := sa.Create(ctx, workflow("unlabelled", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	wf := workflow("", map[string]string{"seakeeper.io/item": "1"})
	wf.GenerateName = "labelled-" // honoured by a real server, unlike the fake clientset
	created, err := sa.Create(ctx, wf, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Name == "" || created.Name == "labelled-" {
		t.Fatalf("generateName not honoured: %q", created.Name)
	}
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		obj, isWF := ev.Object.(*wfv1.Workflow)
		if ev.Type != watch.Added || !isWF || obj.Name != created.Name {
			t.Fatalf("first event: %s %#v, want ADDED %s (the unlabelled one must be filtered out)", ev.Type, ev.Object, created.Name)
		}
	case <-ctx.Done():
		t.Fatal("watch saw nothing")
	}

	// Granted: patch, as a cancel does.
	patched, err := sa.Patch(ctx, created.Name, types.MergePatchType,
		[]byte(`{"spec":{"shutdown":"Terminate"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patch: %v", err)
	}
	if patched.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Fatalf("shutdown after patch: %q", patched.Spec.Shutdown)
	}
	select {
	case ev := <-w.ResultChan():
		if ev.Type != watch.Modified {
			t.Fatalf("second event: %s, want MODIFIED", ev.Type)
		}
	case <-ctx.Done():
		t.Fatal("watch did not see the patch")
	}
}

// TestClusterGrantAndKubeconfig covers a cluster-wide grant (what
// namespace auto-creation needs) and a kubeconfig file as the daemon reads
// it.
func TestClusterGrantAndKubeconfig(t *testing.T) {
	c := kubetest.StartShared(t)
	ctx := ctxFor(t)

	system := c.UniqueName("kubetest-system")
	cfg := c.ServiceAccount(t, system, "daemon")
	path := kubetest.WriteKubeconfig(t, cfg, system)
	fromFile, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	client, err := kubernetes.NewForConfig(fromFile)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.UniqueName("ci-kubetest-auto")}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("create namespace before the grant: got %v, want Forbidden", err)
	}
	c.Grant(t, "", system, "daemon", map[string][]string{"namespaces": {"create", "get"}})
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace after the grant: %v", err)
	}
	if _, err := client.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	if _, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list namespaces (not granted): got %v, want Forbidden", err)
	}
}

// TestStartStops starts a cluster of its own and checks that it is gone
// once its test has ended.
func TestStartStops(t *testing.T) {
	var host string
	t.Run("cluster", func(t *testing.T) {
		c := kubetest.Start(t)
		t.Logf("start-up took %v", c.StartupTime())
		host = c.Host()
		v, err := c.AdminClient().Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != kubetest.KubeVersion {
			t.Fatalf("server version %s, want %s", v.GitVersion, kubetest.KubeVersion)
		}
	})
	if host == "" {
		return // skipped
	}
	u, err := url.Parse(host)
	if err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		conn.Close()
		t.Fatalf("kube-apiserver still listening on %s after its test ended", u.Host)
	}
}
