package kubetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
)

// WriteKubeconfig writes a kubeconfig file for cfg (server, CA data and
// bearer token; namespace, if not empty, as the context's namespace) into
// a temporary directory of tb and returns its path, for code under test
// that takes a kubeconfig file, such as the daemon.
func WriteKubeconfig(tb testing.TB, cfg *rest.Config, namespace string) string {
	tb.Helper()
	type named struct {
		Name    string         `json:"name"`
		Cluster map[string]any `json:"cluster,omitempty"`
		User    map[string]any `json:"user,omitempty"`
		Context map[string]any `json:"context,omitempty"`
	}
	ctx := map[string]any{"cluster": "kubetest", "user": "kubetest"}
	if namespace != "" {
		ctx["namespace"] = namespace
	}
	kc := map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []named{{Name: "kubetest", Cluster: map[string]any{
			"server":                     cfg.Host,
			"certificate-authority-data": cfg.CAData, // []byte: base64, as kubeconfig wants
		}}},
		"users":           []named{{Name: "kubetest", User: map[string]any{"token": cfg.BearerToken}}},
		"contexts":        []named{{Name: "kubetest", Context: ctx}},
		"current-context": "kubetest",
	}
	data, err := json.MarshalIndent(kc, "", "  ") // JSON is YAML
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
