package kubetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Versions of the control plane that hack/kube-binaries.sh builds.
const (
	KubeVersion = "v1.33.1"
	EtcdVersion = "v3.5.21"
)

// binaries are the paths of the two executables.
type binaries struct {
	apiserver, etcd string
}

// BinDir is the directory the binaries are taken from: $SEAKEEPER_KUBE_BIN,
// else the bin directory of hack/kube-binaries.sh's cache.
func BinDir() string {
	if dir := os.Getenv("SEAKEEPER_KUBE_BIN"); dir != "" {
		return dir
	}
	cache := os.Getenv("SEAKEEPER_KUBE_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				home = os.TempDir()
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "seakeeper", "kube-"+KubeVersion)
	}
	return filepath.Join(cache, "bin")
}

// findBinaries returns the binaries, or ends tb: skipped on a developer's
// machine, failed when CI=true so that a CI run cannot go green by
// skipping the tier.
func findBinaries(tb testing.TB) binaries {
	tb.Helper()
	dir := BinDir()
	b := binaries{
		apiserver: filepath.Join(dir, "kube-apiserver"),
		etcd:      filepath.Join(dir, "etcd"),
	}
	var missing []string
	for _, p := range []string{b.apiserver, b.etcd} {
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, filepath.Base(p))
		}
	}
	if len(missing) == 0 {
		return b
	}
	msg := fmt.Sprintf("kubetest: %s not found in %s: run hack/kube-binaries.sh "+
		"(builds kube-apiserver %s and etcd %s from the Go module proxy, about five "+
		"minutes the first time; ./test.sh runs it) or set SEAKEEPER_KUBE_BIN",
		strings.Join(missing, " and "), dir, KubeVersion, EtcdVersion)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return b
}
