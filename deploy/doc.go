// Package deploy holds how a site runs Seakeeper on Kubernetes: the image
// (Dockerfile) and the manifests kustomization.yaml lists — Namespace,
// ServiceAccount and RBAC, the ConfigMap with a complete sample config.yaml,
// the headless and web Services, a NetworkPolicy and the StatefulSet.
// secret.example.yaml shows the Secret the operator creates by hand.
//
// The Go package exists only for its test, which creates every manifest
// with a server-side dry run against a real kube-apiserver
// (internal/kubetest), checks that the deployed ServiceAccount may do what
// the daemon does there, and ties the manifests to the code: the config
// path of the image's CMD, the health endpoints, the Secret's file names,
// the sample config (scheduler.ParseMainConfig), and the namespace label
// of the Argo adapter.
//
// It must not be imported, and must not hold anything but that test: the
// manifests are the product here.
package deploy
