package browsertest

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// ArtifactsEnv names the directory where screenshots are kept for people
// to look at (CI collects it); without it they go to a temporary directory.
const ArtifactsEnv = "SEAKEEPER_ARTIFACTS"

// maxWidth and maxHeight bound a plausible screenshot of a page.
const maxWidth, maxHeight = 10000, 50000

// ArtifactDir returns $SEAKEEPER_ARTIFACTS, created if need be, or else
// the test's temporary directory.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(ArtifactsEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("$%s: %v", ArtifactsEnv, err)
		}
		return dir
	}
	return t.TempDir()
}

// SaveScreenshot writes data as name in ArtifactDir, checks it with
// CheckPNG and returns its path. An invalid screenshot fails the test
// (it is kept, to be looked at).
func SaveScreenshot(t testing.TB, name string, data []byte, minWidth, minHeight int) string {
	t.Helper()
	if name == "" || filepath.Base(name) != name {
		t.Fatalf("SaveScreenshot: name %q must be a plain file name", name)
	}
	path := filepath.Join(ArtifactDir(t), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("saving screenshot: %v", err)
	}
	w, h, err := CheckPNG(data, minWidth, minHeight)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	t.Logf("screenshot: %s (%dx%d)", path, w, h)
	return path
}

// CheckPNG returns the dimensions of a PNG image that decodes completely
// and is at least minWidth×minHeight (and not absurdly large), else an
// error saying what is wrong.
func CheckPNG(data []byte, minWidth, minHeight int) (width, height int, _ error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, fmt.Errorf("not an image (%d bytes): %w", len(data), err)
	}
	if format != "png" {
		return 0, 0, fmt.Errorf("a %s image, want png", format)
	}
	if cfg.Width < minWidth || cfg.Height < minHeight || cfg.Width > maxWidth || cfg.Height > maxHeight {
		return 0, 0, fmt.Errorf("%dx%d, want at least %dx%d and at most %dx%d",
			cfg.Width, cfg.Height, minWidth, minHeight, maxWidth, maxHeight)
	}
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		return 0, 0, fmt.Errorf("%dx%d PNG does not decode: %w", cfg.Width, cfg.Height, err)
	}
	return cfg.Width, cfg.Height, nil
}
