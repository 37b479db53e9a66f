package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeNeedsConfig(t *testing.T) {
	code, _, errOut := seakeeper(t, "serve")
	if code != 2 || !strings.Contains(errOut, "--config FILE is required") {
		t.Errorf("no --config: exit %d, %q", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("frobnicate: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = seakeeper(t, "serve", "--config", bad)
	if code != 1 || !strings.Contains(errOut, "bad.yaml:1:") {
		t.Errorf("invalid config: exit %d, %q", code, errOut)
	}
}
