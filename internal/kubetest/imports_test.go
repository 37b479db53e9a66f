package kubetest_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNotLinkedIntoBinaries checks that no command of the module depends on
// kubetest, directly or through another package: it is a test helper.
func TestNotLinkedIntoBinaries(t *testing.T) {
	const self = "github.com/seakeeper-ci/seakeeper/internal/kubetest"
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.Command("go", "list", "-e", "-f",
		`{{if eq .Name "main"}}{{.ImportPath}}{{range .Deps}} {{.}}{{end}}{{"\n"}}{{end}}`, "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	mains := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		mains++
		for _, dep := range fields[1:] {
			if dep == self {
				t.Errorf("%s links %s, a test helper", fields[0], self)
			}
		}
	}
	if mains == 0 {
		t.Fatalf("go list found no commands in %s", root)
	}
}
