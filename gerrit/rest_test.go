package gerrit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

func sha(n int) string { return fmt.Sprintf("%040x", n) }

func oneChange(f *restFake, project string, number int) *fakeChange {
	return f.add(&fakeChange{project: project, branch: "master", number: number, owner: "alice",
		changeID: "I" + sha(number), revs: []fakeRev{{sha: sha(number*100 + 1), message: "Subject\n", parents: []string{sha(1)}}}})
}

func TestNewClientConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "pw\n")
	for _, tc := range []struct {
		name string
		cfg  ClientConfig
		want string // in the error
	}{
		{"missing file", ClientConfig{URL: "https://g", User: "u", PasswordFile: filepath.Join(dir, "nope")}, filepath.Join(dir, "nope")},
		{"empty file", ClientConfig{URL: "https://g", User: "u", PasswordFile: write("empty", "")}, filepath.Join(dir, "empty")},
		{"newline only", ClientConfig{URL: "https://g", User: "u", PasswordFile: write("nl", "\n")}, filepath.Join(dir, "nl")},
		{"no file", ClientConfig{URL: "https://g", User: "u"}, "password file is not set"},
		{"no user", ClientConfig{URL: "https://g", PasswordFile: good}, "user is not set"},
		{"relative URL", ClientConfig{URL: "review.example.org", User: "u", PasswordFile: good}, "absolute"},
		{"credentials in URL", ClientConfig{URL: "https://u:pw@g/", User: "u", PasswordFile: good}, "credentials"},
	} {
		if _, err := NewClient(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestPasswordFileTrailingNewlines(t *testing.T) {
	f := newRESTFake(t)
	oneChange(f, "p", 1)
	for _, content := range []string{f.pass, f.pass + "\n", f.pass + "\r\n"} {
		pw := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pw, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := NewClient(ClientConfig{URL: f.srv.URL, User: f.user, PasswordFile: pw})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Detail(context.Background(), pipeline.ChangeKey{Project: "p", Number: 1}); err != nil {
			t.Errorf("password file %q: %v", content, err)
		}
	}
	// A password with a trailing space keeps it; only newlines go.
	if got, _ := readPasswordFile(writeTemp(t, "a b \n")); got != "a b " {
		t.Errorf("readPasswordFile = %q, want %q", got, "a b ")
	}
}

func writeTemp(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewClientDoesNotCallGerrit(t *testing.T) {
	f := newRESTFake(t)
	f.client(t)
	if got := f.requestLog(); len(got) != 0 {
		t.Errorf("NewClient made requests: %v", got)
	}
}

func TestUnauthorizedIsNotRetried(t *testing.T) {
	f := newRESTFake(t)
	oneChange(f, "p", 1)
	c := f.client(t)
	c.gc.Authentication.SetBasicAuth(f.user, "wrong")
	_, err := c.Detail(context.Background(), pipeline.ChangeKey{Project: "p", Number: 1})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Message != "Unauthorized" || IsTransient(err) {
		t.Fatalf("err = %#v, want a 401 APIError saying Unauthorized", err)
	}
}

func TestReviewRetriedAfter503IsAppliedOnce(t *testing.T) {
	f := newRESTFake(t)
	ch := oneChange(f, "p", 1)
	f.fail(1, http.StatusServiceUnavailable, "0", "Service Unavailable")
	c := f.client(t)
	err := c.Review(context.Background(), pipeline.ChangeKey{Project: "p", Number: 1}, ch.cur().sha,
		ReviewInput{Labels: map[string]int{"Verified": 1}, Message: "Build succeeded.", Tag: ReportTag("gate")})
	if err != nil {
		t.Fatal(err)
	}
	posts := 0
	for _, r := range f.requestLog() {
		if strings.HasPrefix(r, "POST ") {
			posts++
		}
	}
	if posts != 2 || len(f.reviews) != 1 || len(ch.votes) != 1 {
		t.Errorf("posts = %d, reviews applied = %d, votes = %v; want 2 posts, 1 review, 1 vote", posts, len(f.reviews), ch.votes)
	}
}

func TestRetryAfterHonouredAndLogged(t *testing.T) {
	f := newRESTFake(t)
	oneChange(f, "p", 1)
	logs := &testlog.Buffer{}
	c := f.client(t, func(cfg *ClientConfig) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	f.fail(1, http.StatusTooManyRequests, "1", "Too Many Requests")
	f.fail(1, http.StatusServiceUnavailable, past, "Service Unavailable")
	if _, err := c.Detail(context.Background(), pipeline.ChangeKey{Project: "p", Number: 1}); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{"status=429 wait=1s", "status=503 wait=0s", "gerrit request retry", "attempt=3"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	basic := base64.StdEncoding.EncodeToString([]byte(f.user + ":" + f.pass))
	if strings.Contains(out, f.pass) || strings.Contains(out, basic) {
		t.Errorf("logs hold the password:\n%s", out)
	}
}

func TestRetryAfterBeyondDeadlineFailsAtOnce(t *testing.T) {
	f := newRESTFake(t)
	oneChange(f, "p", 1)
	c := f.client(t, func(cfg *ClientConfig) { cfg.Timeout = 5 * time.Second })
	f.fail(1, http.StatusTooManyRequests, "120", "Too Many Requests")
	_, err := c.Detail(context.Background(), pipeline.ChangeKey{Project: "p", Number: 1})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != 2*time.Minute || !IsTransient(err) {
		t.Fatalf("err = %#v, want a transient 429 with RetryAfter 2m", err)
	}
	if n := len(f.requestLog()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	for _, status := range []int{400, 403, 404, 409, 412, 422} {
		f := newRESTFake(t)
		ch := oneChange(f, "p", 1)
		f.fail(1, status, "", "nope")
		err := f.client(t).Review(context.Background(), pipeline.ChangeKey{Project: "p", Number: 1}, ch.cur().sha, ReviewInput{Message: "x"})
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != status || ae.Message != "nope" || IsTransient(err) {
			t.Errorf("%d: err = %v", status, err)
		}
		if n := len(f.requestLog()); n != 1 || len(f.reviews) != 0 {
			t.Errorf("%d: %d requests, %d reviews; want 1 and 0", status, n, len(f.reviews))
		}
	}
}

func TestServerErrorsRetriedUntilRetryMax(t *testing.T) {
	f := newRESTFake(t)
	oneChange(f, "p", 1)
	f.fail(10, http.StatusBadGateway, "", "<html>Bad Gateway</html>")
	c := f.client(t, func(cfg *ClientConfig) { cfg.RetryMax = 2 })
	_, err := c.Detail(context.Background(), pipeline.ChangeKey{Project: "p", Number: 1})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "<html>Bad Gateway</html>" || !IsTransient(err) {
		t.Fatalf("err = %#v", err)
	}
	if n := len(f.requestLog()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	// RetryMax < 0: no retry at all.
	f = newRESTFake(t)
	oneChange(f, "p", 1)
	f.fail(10, http.StatusServiceUnavailable, "", "down")
	c = f.client(t, func(cfg *ClientConfig) { cfg.RetryMax = -1 })
	if _, err := c.Detail(context.Background(), pipeline.ChangeKey{Project: "p", Number: 1}); err == nil {
		t.Fatal("no error")
	}
	if n := len(f.requestLog()); n != 1 {
		t.Errorf("RetryMax -1: %d requests, want 1", n)
	}
	// 501 Not Implemented does not heal: not retried.
	f = newRESTFake(t)
	f.fail(10, http.StatusNotImplemented, "", "Not Implemented")
	if _, err := f.client(t).BranchTip(context.Background(), "p", "master"); err == nil {
		t.Fatal("no error")
	}
	if n := len(f.requestLog()); n != 1 {
		t.Errorf("501: %d requests, want 1", n)
	}
}

func TestConnectionErrorIsRetriedAndTransient(t *testing.T) {
	f := newRESTFake(t)
	logs := &testlog.Buffer{}
	c := f.client(t, func(cfg *ClientConfig) {
		cfg.RetryMax = 2
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	f.srv.Close()
	_, err := c.BranchTip(context.Background(), "p", "master")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 0 || !IsTransient(err) {
		t.Fatalf("err = %#v, want a transient connection error", err)
	}
	if n := strings.Count(logs.String(), "gerrit request retry"); n != 2 {
		t.Errorf("%d retries logged, want 2:\n%s", n, logs)
	}
}

func TestCallerCancellation(t *testing.T) {
	f := newRESTFake(t)
	f.hang = true
	c := f.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := c.BranchTip(ctx, "p", "master")
	if !errors.Is(err, context.Canceled) || IsTransient(err) {
		t.Fatalf("err = %v, want context.Canceled, not transient", err)
	}
	// Already cancelled: no request at all.
	before := len(f.requestLog())
	if _, err := c.BranchTip(ctx, "p", "master"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.requestLog()) - before; n != 0 {
		t.Errorf("%d requests after cancel", n)
	}
}

func TestPerRequestTimeout(t *testing.T) {
	f := newRESTFake(t)
	f.hang = true
	c := f.client(t, func(cfg *ClientConfig) { cfg.Timeout = 50 * time.Millisecond })
	_, err := c.BranchTip(context.Background(), "p", "master")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 0 || !IsTransient(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %#v, want a transient timeout", err)
	}
	if n := len(f.requestLog()); n != 1 {
		t.Errorf("%d requests, want 1: the timeout covers the retries", n)
	}
}

func TestProjectNamesWithSlashesAreEscaped(t *testing.T) {
	f := newRESTFake(t)
	ch := oneChange(f, "org/sub/project", 42)
	f.branches["org/sub/project refs/heads/stable/1.0"] = sha(7)
	c := f.client(t)
	key := pipeline.ChangeKey{Project: "org/sub/project", Number: 42}
	d, err := c.Detail(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if d.Change.Key() != key {
		t.Errorf("key = %v", d.Change.Key())
	}
	if err := c.Review(context.Background(), key, ch.cur().sha, ReviewInput{Message: "hi"}); err != nil {
		t.Fatal(err)
	}
	if tip, err := c.BranchTip(context.Background(), "org/sub/project", "stable/1.0"); err != nil || tip != sha(7) {
		t.Fatalf("BranchTip = %q, %v", tip, err)
	}
	log := f.requestLog()
	for i, want := range []string{
		"GET /a/changes/org%2Fsub%2Fproject~42?o=",
		"POST /a/changes/org%2Fsub%2Fproject~42/revisions/" + ch.cur().sha + "/review",
		"GET /a/projects/org%2Fsub%2Fproject/branches/stable%2F1.0",
	} {
		if !strings.HasPrefix(log[i], want) {
			t.Errorf("request %d = %q, want prefix %q", i, log[i], want)
		}
	}
}

func TestQueryWithPlusArrivesIntact(t *testing.T) {
	f := newRESTFake(t)
	hit := oneChange(f, "p", 1)
	hit.revs[0].message = "Fix\n\nDepends-On: https://review.example.org/c/org/project/+/123\n"
	oneChange(f, "p", 2)
	q := `message:"https://review.example.org/c/org/project/+/123"`
	got, err := f.client(t).QueryOpen(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Number != 1 {
		t.Fatalf("got %v, want change 1 only", got)
	}
	u, _ := url.Parse(strings.SplitN(f.requestLog()[0], " ", 2)[1])
	if sent := u.Query().Get("q"); sent != "status:open ("+q+")" {
		t.Errorf("server saw q=%q", sent)
	}
	if !strings.Contains(u.RawQuery, "%2B") {
		t.Errorf("raw query %q does not escape +", u.RawQuery)
	}
}

func TestQueryOpenPages(t *testing.T) {
	f := newRESTFake(t)
	for n := 1; n <= 12; n++ {
		oneChange(f, "p", n)
	}
	f.add(&fakeChange{project: "p", branch: "master", number: 13, status: "MERGED", changeID: "I" + sha(13),
		revs: []fakeRev{{sha: sha(1301), message: "m"}}})
	c := f.client(t)
	c.pageSize = 5
	// Between the first and second page the newest change merges: the
	// rest shift towards the front, and the overlap keeps all of them.
	pages := 0
	f.afterQuery = func() {
		if pages++; pages == 1 {
			f.changes[11].status = "MERGED"
		}
	}
	got, err := c.QueryOpen(context.Background(), "project:p")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, ch := range got {
		if seen[ch.Number] {
			t.Errorf("change %d twice", ch.Number)
		}
		seen[ch.Number] = true
	}
	for n := 1; n <= 11; n++ {
		if !seen[n] {
			t.Errorf("change %d missing", n)
		}
	}
	log := f.requestLog()
	if len(log) < 3 || !strings.Contains(log[0], "n=5") || strings.Contains(log[0], "S=") || !strings.Contains(log[1], "S=3") {
		t.Errorf("requests: %q", log)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false}, {"7", 7 * time.Second, true}, {" 0 ", 0, true}, {"-1", 0, false}, {"soon", 0, false},
		{"Wed, 01 May 2024 12:00:30 GMT", 30 * time.Second, true},
		{"Wednesday, 01-May-24 12:01:00 GMT", time.Minute, true},
		{"Wed, 01 May 2024 11:00:00 GMT", 0, true},
	} {
		if got, ok := parseRetryAfter(tc.in, now); got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffWithoutRetryAfter(t *testing.T) {
	c := &Client{log: slog.New(slog.DiscardHandler), now: time.Now}
	want := []time.Duration{1, 2, 4, 8, 8, 8}
	for i, w := range want {
		if got := c.backoff(time.Millisecond, 8*time.Millisecond, i, nil); got != w*time.Millisecond {
			t.Errorf("attempt %d: %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if got := c.backoff(time.Millisecond, 8*time.Millisecond, 200, nil); got != 8*time.Millisecond {
		t.Errorf("attempt 200: %v", got)
	}
}
