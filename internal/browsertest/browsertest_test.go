package browsertest

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestFindChromium(t *testing.T) {
	notFound := errors.New(`exec: "chromium": executable file not found in $PATH`)
	for _, tc := range []struct {
		name      string
		onPath    string
		debian    bool
		want      string
		wantError []string
	}{
		{name: "on PATH", onPath: "/opt/bin/chromium", debian: true, want: "/opt/bin/chromium"},
		{name: "only where Debian puts it", debian: true, want: "/usr/bin/chromium"},
		{name: "nowhere", wantError: []string{"chromium is not installed", "/usr/bin/chromium", notFound.Error()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			look := func(name string) (string, error) {
				if name != "chromium" {
					t.Errorf("looked for %q on PATH", name)
				}
				if tc.onPath == "" {
					return "", notFound
				}
				return tc.onPath, nil
			}
			exists := func(p string) bool { return tc.debian && p == "/usr/bin/chromium" }
			got, err := findChromium(look, exists)
			if tc.wantError == nil {
				if err != nil || got != tc.want {
					t.Errorf("findChromium = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("findChromium = %q, want an error", got)
			}
			for _, s := range tc.wantError {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// recorder records what requireChromium asks of the test.
type recorder struct{ skipped, fatal string }

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

// TestRequireChromiumSkipsOutsideCI: a missing browser skips the test with
// the reason, fails it under CI=true, and a found one does neither.
func TestRequireChromiumSkipsOutsideCI(t *testing.T) {
	missing := func() (string, error) { return "", errors.New("chromium is not installed (nowhere)") }
	found := func() (string, error) { return "/usr/bin/chromium", nil }
	for _, tc := range []struct {
		name         string
		ci           bool
		find         func() (string, error)
		want         string
		skips, fails bool
	}{
		{"found", false, found, "/usr/bin/chromium", false, false},
		{"found under CI", true, found, "/usr/bin/chromium", false, false},
		{"missing", false, missing, "", true, false},
		{"missing under CI", true, missing, "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			got := requireChromium(r, tc.ci, tc.find)
			if got != tc.want || (r.skipped != "") != tc.skips || (r.fatal != "") != tc.fails {
				t.Fatalf("requireChromium = %q, skipped %q, fatal %q; want %q, skip %v, fail %v",
					got, r.skipped, r.fatal, tc.want, tc.skips, tc.fails)
			}
			for _, msg := range []string{r.skipped, r.fatal} {
				if msg != "" && (!strings.Contains(msg, "chromium is not installed (nowhere)") || !strings.Contains(msg, "CI=true")) {
					t.Errorf("the message %q does not give the reason and the CI=true rule", msg)
				}
			}
		})
	}
}

func encodePNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCheckPNG(t *testing.T) {
	good := encodePNG(t, 900, 700)
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewRGBA(image.Rect(0, 0, 900, 700)), nil); err != nil {
		t.Fatal(err)
	}
	if w, h, err := CheckPNG(good, 800, 600); err != nil || w != 900 || h != 700 {
		t.Errorf("CheckPNG(900x700 PNG) = %d, %d, %v", w, h, err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		minW int
		want string
	}{
		{"too small", good, 1000, "900x700, want at least 1000x600"},
		{"too large", encodePNG(t, 10001, 10), 10, "10001x10, want at least 10x600 and at most 10000x50000"},
		{"a JPEG", jpg.Bytes(), 800, "a jpeg image, want png"},
		{"not an image", []byte("<html>"), 800, "not an image (6 bytes)"},
		{"truncated", good[:len(good)-20], 800, "900x700 PNG does not decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := CheckPNG(tc.data, tc.minW, 600)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckPNG = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestSaveScreenshotInArtifactsDir: with $SEAKEEPER_ARTIFACTS set, the
// screenshot is written there, the directory created first.
func TestSaveScreenshotInArtifactsDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "artifacts", "browser")
	t.Setenv(ArtifactsEnv, dir)
	data := encodePNG(t, 40, 30)
	path := SaveScreenshot(t, "shot.png", data, 40, 30)
	if want := filepath.Join(dir, "shot.png"); path != want {
		t.Errorf("saved as %s, want %s", path, want)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("reading the screenshot back: %d bytes, %v; want the %d saved", len(got), err, len(data))
	}
}

const testPage = `<!doctype html>
<html lang="en"><head><title>browsertest page</title>
<style>html, body { margin: 0; background: rgb(200, 0, 0); }</style></head>
<body><h1>Queue</h1>
<label for="bar">Build: 3 of 10 steps</label> <progress id="bar" max="10" value="3"></progress>
<p aria-hidden="true" id="decoration">~</p>
</body></html>`

// TestBrowser starts Chromium, loads a page, evaluates script in it, reads
// what assistive technology sees of a labelled progress bar and takes a
// screenshot that shows the page.
func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(testPage))
	}))
	defer srv.Close()

	b := New(t, 800, 600)
	b.Do("loading the page", chromedp.Navigate(srv.URL+"/"))
	if got := Eval[string](b, `document.title`); got != "browsertest page" {
		t.Errorf("title %q", got)
	}
	if got := Eval[[]int](b, `[document.getElementById('bar').value, document.getElementById('bar').max]`); len(got) != 2 || got[0] != 3 || got[1] != 10 {
		t.Errorf("progress value and max %v, want [3 10]", got)
	}

	a := b.Accessible("#bar")
	if a.Role != "progressbar" || a.Name != "Build: 3 of 10 steps" || a.Value != "3" ||
		a.Properties["valuemin"] != "0" || a.Properties["valuemax"] != "10" {
		t.Errorf("the progress bar is told as %+v, want progressbar %q 3 of 0..10", a, "Build: 3 of 10 steps")
	}
	if _, err := Run(b, accessibleOf("#nothing")); err == nil || !strings.Contains(err.Error(), "no element matches #nothing") {
		t.Errorf("the accessibility of a missing element: %v", err)
	}
	if _, err := Run(b, accessibleOf("#decoration")); err == nil || !strings.Contains(err.Error(), "#decoration is not exposed to assistive technology") {
		t.Errorf("the accessibility of an aria-hidden element: %v", err)
	}
	if _, err := Run(b, accessibleOf("p[")); err == nil || !strings.Contains(err.Error(), "selector p[: ") {
		t.Errorf("the accessibility of a bad selector: %v", err)
	}

	t.Setenv(ArtifactsEnv, t.TempDir())
	path := b.Screenshot("page.png", 400, 300)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// The page's background, far from the text.
	r, g, bl, _ := img.At(img.Bounds().Dx()-5, img.Bounds().Dy()-5).RGBA()
	if got := (color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}); got != (color.RGBA{200, 0, 0, 255}) {
		t.Errorf("the screenshot's bottom right pixel is %v, want the page's background rgb(200, 0, 0)", got)
	}
}
