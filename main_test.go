package main

import (
	"bytes"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// seakeeper runs the command line in-process and returns its exit status
// and output.
func seakeeper(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := seakeeper(t, "version")
	if code != 0 || !strings.HasPrefix(out, "seakeeper dev (") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestCheckConfigExample(t *testing.T) {
	path := filepath.Join("testdata", "config", "example.yaml")
	code, out, errOut := seakeeper(t, "check-config", path)
	if want := path + ": ok: 3 pipelines, 2 shared queues\n"; code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit 0 and %q", code, out, errOut, want)
	}
}

func TestCheckConfigBroken(t *testing.T) {
	path := filepath.Join("testdata", "config", "broken.yaml")
	code, out, errOut := seakeeper(t, "check-config", path)
	want := []string{
		`:8: gerrit.http-password: unknown key (did you mean "http-password-file"?)`,
		`:10: kubernetes.max-workflows: must be at least 1, not 0`,
		`:11: kubernetes.ttl: expected a duration such as 90s, 15m or 24h, found "1 day"`,
		`:19: pipelines[0].trigger[0].comment: bad regular expression "(?i)^\\s*(recheck": error parsing regexp: missing closing ): ` + "`(?i)^\\s*(recheck`",
		`:20: pipelines[0].reqiure: unknown key (did you mean "require"?)`,
		`:23: pipelines[1].manager: unknown manager "dependant" (want independent, dependent or supercedent)`,
		`:35: pipelines[2].window.initial: initial window 2 is below the floor 5`,
	}
	for i := range want {
		want[i] = path + want[i]
	}
	if got := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n"); code != 1 || out != "" || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and:\n%s", code, out, errOut, strings.Join(want, "\n"))
	}
}

func TestCheckConfigFailures(t *testing.T) {
	code, _, errOut := seakeeper(t, "check-config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	code, _, errOut = seakeeper(t, "check-config")
	if code != 2 || !strings.Contains(errOut, "accepts 1 arg") {
		t.Errorf("no argument: exit %d, %q", code, errOut)
	}
}

func TestNotYet(t *testing.T) {
	for _, tc := range []struct {
		cmd      string
		code     int
		onStdout bool
	}{
		{"simulate", 1, false},
	} {
		code, out, errOut := seakeeper(t, tc.cmd)
		msg := errOut
		if tc.onStdout {
			msg = out
		}
		if code != tc.code || msg != "not yet: arrives with a later issue\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", tc.cmd, code, out, errOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	code, _, errOut := seakeeper(t, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("exit %d, %q", code, errOut)
	}
	code, out, _ := seakeeper(t, "--help")
	if code != 0 || !strings.Contains(out, "check-config") {
		t.Errorf("help: exit %d, %q", code, out)
	}
}
