// Package kubetest runs a real kube-apiserver and etcd on loopback for tests:
// the "real Kubernetes API" tier of DESIGN §6. It is a test helper only and
// must never be linked into a Seakeeper binary (imports_test.go checks).
//
// The binaries are not in the repository: hack/kube-binaries.sh builds
// kube-apiserver (k8s.io/kubernetes v1.33.1) and etcd (the v3.5 server that
// release requires) from the Go module proxy and caches them in
//
//	${SEAKEEPER_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seakeeper/kube-v1.33.1}/bin
//
// or $SEAKEEPER_KUBE_BIN names a directory holding both. Without them a test
// is skipped, or fails when CI=true, so that CI can never pass by skipping.
//
// A Cluster is what a real control plane offers minus nodes and controllers:
// RBAC authorisation, a static admin token (group system:masters), the
// TokenRequest API for ServiceAccount tokens, CRDs, watches with label
// selectors, admission (ResourceQuota included). Nothing runs Pods, and
// without kube-controller-manager a deleted namespace stays Terminating, so
// tests use fresh namespace names instead of cleaning up.
//
// Typical use, with one cluster per test:
//
//	c := kubetest.Start(t)
//	c.InstallArgoCRDs(t)
//	cfg := c.ProjectNamespace(t, "ci-demo", map[string][]string{
//		"workflows": {"create", "get", "list", "watch", "patch", "delete"},
//	})
//	// run the code under test with cfg: a verb it lacks fails with Forbidden.
//
// or with one cluster per test package (start-up takes a few seconds):
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//	func TestX(t *testing.T) { c := kubetest.StartShared(t); ... }
//
// Tests sharing a cluster must use distinct namespaces (UniqueName makes
// them; -count=N reruns tests on the same cluster).
package kubetest
