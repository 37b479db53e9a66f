package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seakeeper-ci/seakeeper/internal/testlog"
)

// ActionTimeout bounds each call of Browser's methods: generous, a guard
// against a hung browser rather than a measure.
const ActionTimeout = time.Minute

// debianChromium is where the Debian package puts the browser, for a PATH
// that lacks /usr/bin.
const debianChromium = "/usr/bin/chromium"

// ChromiumPath returns the path of the chromium binary. Without one the
// test is skipped, or fails when the environment has CI=true.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	return requireChromium(t, os.Getenv("CI") == "true", func() (string, error) {
		return findChromium(exec.LookPath, func(p string) bool { _, err := os.Stat(p); return err == nil })
	})
}

// findChromium looks for chromium on the PATH, then where Debian puts it.
func findChromium(lookPath func(string) (string, error), exists func(string) bool) (string, error) {
	path, err := lookPath("chromium")
	if err == nil {
		return path, nil
	}
	if exists(debianChromium) {
		return debianChromium, nil
	}
	return "", fmt.Errorf("chromium is not installed (not on PATH, no %s): %w", debianChromium, err)
}

// skipFataler is the part of testing.TB that requireChromium uses.
type skipFataler interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// requireChromium returns what find finds; when it finds nothing, the
// test is skipped, or failed when ci, and "" is returned.
func requireChromium(t skipFataler, ci bool, find func() (string, error)) string {
	t.Helper()
	path, err := find()
	switch {
	case err == nil:
		return path
	case ci:
		t.Fatalf("%v; test.sh installs the Debian package chromium (CI=true makes this fatal)", err)
	default:
		t.Skipf("%v; apt-get install chromium to run this test (CI=true makes this fatal)", err)
	}
	return ""
}

// Browser is one tab of a headless Chromium that stops when the test ends.
// Its methods fail the test on an error, naming what they were doing.
type Browser struct {
	t   testing.TB
	ctx context.Context
}

// New starts headless Chromium with a fresh profile in a temporary
// directory and a window of width×height, and returns its one tab. As
// root, the sandbox is off (Chromium refuses to start otherwise).
func New(t testing.TB, width, height int) *Browser {
	t.Helper()
	if width <= 0 || height <= 0 {
		t.Fatalf("browsertest.New: window %dx%d, want positive dimensions", width, height)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("lang", "en-US"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	output := &testlog.Buffer{}
	opts = append(opts, chromedp.CombinedOutput(output))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() && output.String() != "" {
			t.Logf("chromium output:\n%s", output.String())
		}
	})
	// The first action starts the browser. A timeout on it would stop the
	// browser when it expires, so it runs unbounded.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v\n%s", err, output.String())
	}
	return &Browser{t: t, ctx: ctx}
}

// Context returns the chromedp context of the tab, for chromedp.Run and
// chromedp.Do without a bound (derive one with context.WithTimeout).
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs the actions in order; what names them in the failure.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if _, err := Run(b, chromedp.Steps(actions...)); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Run runs one action within ActionTimeout and returns its value.
func Run[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, ActionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("no answer from chromium within %v: %w", ActionTimeout, err)
	}
	return v, err
}

// Eval evaluates the JavaScript expression in the page and returns its
// value, decoded from JSON into T.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	v, err := Run(b, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// Screenshot takes a screenshot of the whole page, saves it as name in
// ArtifactDir and checks it (see SaveScreenshot); it returns the path.
func (b *Browser) Screenshot(name string, minWidth, minHeight int) string {
	b.t.Helper()
	data, err := Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	return SaveScreenshot(b.t, name, data, minWidth, minHeight)
}
