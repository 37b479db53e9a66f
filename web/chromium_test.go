package web

// Headless Chromium for the browser tier (DESIGN §6, tier 4). Everything
// about finding and starting the browser is here.

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds the Debian chromium binary. Without it the test is
// skipped, or fails under CI=true (test.sh installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/chromium"); serr == nil {
			return "/usr/bin/chromium"
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (test.sh installs the Debian package chromium): %v", err)
		}
		t.Skipf("chromium is not installed (apt-get install chromium; CI=true makes this fatal): %v", err)
	}
	return path
}

// newBrowser starts headless Chromium with a fresh profile and returns a
// chromedp context of one tab; everything stops when the test ends.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("lang", "en-US"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root otherwise
	}
	var stderr bytes.Buffer
	opts = append(opts, chromedp.CombinedOutput(&stderr))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("chromium output:\n%s", stderr.String())
		}
	})
	// The first action starts the browser; no timeout on it (it would
	// stop the browser), so bound it by hand.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v\n%s", err, stderr.String())
	}
	return ctx
}

// artifactDir is where screenshots go: $SEAKEEPER_ARTIFACTS when set,
// else the test's temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("SEAKEEPER_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// saveScreenshot writes a PNG screenshot as name and checks that it is a
// valid PNG of plausible dimensions.
func saveScreenshot(t *testing.T, name string, data []byte, minW, minH int) string {
	t.Helper()
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || format != "png" {
		t.Fatalf("screenshot %s is not a PNG (%q): %v", path, format, err)
	}
	if cfg.Width < minW || cfg.Height < minH || cfg.Width > 10000 || cfg.Height > 50000 {
		t.Errorf("screenshot %s is %dx%d, want at least %dx%d", path, cfg.Width, cfg.Height, minW, minH)
	}
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Errorf("screenshot %s does not decode: %v", path, err)
	}
	t.Logf("screenshot: %s (%dx%d)", path, cfg.Width, cfg.Height)
	return path
}
