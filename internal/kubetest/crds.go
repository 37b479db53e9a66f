package kubetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// ArgoModule is the module whose minimal CRDs InstallArgoCRDs installs, at
// the version the main module requires.
const ArgoModule = "github.com/argoproj/argo-workflows/v3"

// argoCRDSubdir is where the module keeps its minimal CRDs: schemas that
// keep spec and status as free-form objects, as Argo recommends for users
// that do not need server-side validation.
const argoCRDSubdir = "manifests/base/crds/minimal"

var crdGVR = schema.GroupVersionResource{
	Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions",
}

// InstallArgoCRDs installs Argo's minimal CRDs (Workflow, WorkflowTemplate,
// CronWorkflow, …) from the argo-workflows module in the module cache and
// waits until they are served. It also pays the API server's one-time
// set-up of custom resources (about two seconds, on the first list and the
// first create), so that the code under test sees prompt answers. It is
// idempotent.
func (c *Cluster) InstallArgoCRDs(tb testing.TB) {
	tb.Helper()
	c.crdMu.Lock()
	defer c.crdMu.Unlock()
	if c.crdsInstalled {
		return
	}
	dir, version, err := argoCRDDir()
	if err != nil {
		tb.Fatalf("kubetest: finding Argo's CRDs: %v", err)
	}
	crds, err := readCRDs(dir)
	if err != nil {
		tb.Fatalf("kubetest: %v", err)
	}
	t0 := time.Now()
	dyn, err := dynamic.NewForConfig(c.AdminConfig())
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := dyn.Resource(crdGVR)
	for _, crd := range crds {
		_, err := client.Create(ctx, crd, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			tb.Fatalf("kubetest: creating CRD %s: %v", crd.GetName(), err)
		}
	}
	for _, crd := range crds {
		if err := waitEstablished(ctx, client, crd.GetName()); err != nil {
			tb.Fatalf("kubetest: CRD %s: %v", crd.GetName(), err)
		}
	}
	// The first request for a custom resource waits while the server sets
	// up its storage, a second or two; pay that here, once and in parallel,
	// rather than in the first call of the code under test.
	var wg sync.WaitGroup
	errs := make([]error, len(crds))
	for i, crd := range crds {
		wg.Go(func() { errs[i] = warm(ctx, dyn, crd) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("kubetest: first list of %s: %v", crds[i].GetName(), err)
		}
	}
	// So does the first create of any custom resource (in admission); a
	// dry run pays that too.
	if err := c.dryRunWorkflow(ctx, dyn); err != nil {
		tb.Fatalf("kubetest: dry-run Workflow create: %v", err)
	}
	c.crdsInstalled = true
	tb.Logf("kubetest: installed %d CRDs from %s@%s in %v", len(crds), ArgoModule, version, time.Since(t0).Round(time.Millisecond))
}

var argoDir struct {
	once         sync.Once
	dir, version string
	err          error
}

// argoCRDDir locates the minimal CRDs of the argo-workflows version that
// the main module requires, downloading the module if it is not cached.
func argoCRDDir() (dir, version string, err error) {
	argoDir.once.Do(func() {
		var m struct{ Version, Dir string }
		if argoDir.err = goJSON(&m, "list", "-m", "-json", ArgoModule); argoDir.err != nil {
			return
		}
		if m.Dir == "" {
			argoDir.err = goJSON(&m, "mod", "download", "-json", ArgoModule+"@"+m.Version)
			if argoDir.err != nil {
				return
			}
		}
		argoDir.dir = filepath.Join(m.Dir, filepath.FromSlash(argoCRDSubdir))
		argoDir.version = m.Version
	})
	return argoDir.dir, argoDir.version, argoDir.err
}

// goJSON runs the go command, which prints one JSON object, into v.
func goJSON(v any, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return json.Unmarshal(out, v)
}

// readCRDs reads every CustomResourceDefinition in dir, in name order.
func readCRDs(dir string) ([]*unstructured.Unstructured, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var crds []*unstructured.Unstructured
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &obj.Object); err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		if obj.GetKind() != "CustomResourceDefinition" {
			continue // kustomization.yaml
		}
		crds = append(crds, obj)
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no CustomResourceDefinitions in %s", dir)
	}
	return crds, nil
}

// waitEstablished polls a CRD until its Established condition is True.
func waitEstablished(ctx context.Context, client dynamic.NamespaceableResourceInterface, name string) error {
	for {
		obj, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not established: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// warm lists one object of a CRD's resource in its storage version.
func warm(ctx context.Context, dyn dynamic.Interface, crd *unstructured.Unstructured) error {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	version := ""
	for _, v := range versions {
		m, _ := v.(map[string]any)
		if name, _ := m["name"].(string); name != "" && (version == "" || m["storage"] == true) {
			version = name
		}
	}
	if group == "" || plural == "" || version == "" {
		return fmt.Errorf("no group, plural or version in the CRD")
	}
	gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
	_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
	return err
}

// dryRunWorkflow creates a Workflow in namespace default with dryRun=All.
func (c *Cluster) dryRunWorkflow(ctx context.Context, dyn dynamic.Interface) error {
	// The API server creates namespace default just after it becomes ready.
	err := poll(ctx, func() (bool, error) {
		_, err := c.admin.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return err
	}
	wf := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Workflow",
		"metadata":   map[string]any{"generateName": "kubetest-warm-"},
		"spec":       map[string]any{},
	}}
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
	_, err = dyn.Resource(gvr).Namespace(metav1.NamespaceDefault).Create(ctx, wf,
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}
