package gerrit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gogerrit "github.com/andygrunwald/go-gerrit"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Defaults of ClientConfig.
const (
	DefaultRESTTimeout  = 30 * time.Second
	DefaultRetryMax     = 4
	DefaultRetryWaitMin = 250 * time.Millisecond
	DefaultRetryWaitMax = 5 * time.Second
)

// maxErrorBody bounds how much of an error response is read: Gerrit's own
// messages are short, a proxy's HTML error page need not be.
const maxErrorBody = 16 << 10

// ClientConfig configures the REST client.
type ClientConfig struct {
	// URL is Gerrit's REST base URL (https://review.example.org/ or with a
	// path prefix). Authenticated calls go to <URL>/a/...
	URL string
	// User and PasswordFile are the HTTP credentials (Basic auth). The file
	// holds the HTTP password; one trailing newline is ignored.
	User, PasswordFile string
	// Timeout bounds one REST request, retries and their waits included.
	// Zero means DefaultRESTTimeout.
	Timeout time.Duration
	// RetryMax is how many times a request is retried after a 5xx, a 429
	// or a connection error. Zero means DefaultRetryMax; negative, never.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff between
	// retries when the server sends no Retry-After. Zero means the default.
	RetryWaitMin, RetryWaitMax time.Duration
	// Logger receives request and retry logs; nil discards them.
	Logger *slog.Logger

	// WebURL is Gerrit's canonical web URL, when it differs from URL: change
	// URLs are built from it and Depends-On URLs naming its host are ours.
	// Empty means URL.
	WebURL string

	// OnResponse, when set, is called after every HTTP attempt, retries
	// included, with the response's status code, or with 0 and the
	// transport error (metrics count Gerrit API errors with it). It is
	// not called for attempts cut short by the caller's cancellation. It
	// must return at once.
	OnResponse func(status int, err error)
}

// Client is Seakeeper's Gerrit REST client: go-gerrit over a retrying HTTP
// transport. Changes are always addressed as project~number. It is safe for
// concurrent use.
//
// Retries: 5xx (except 501), 429 and connection errors are retried, with
// the server's Retry-After (seconds or an HTTP date) when it sends one and
// exponential backoff otherwise; 4xx never are, so a 409 comes back at once.
// A Retry-After that would outlast the request's deadline is not waited
// for: the call fails at once with an *APIError carrying RetryAfter.
// POSTs are retried too: a 5xx or 429 from Gerrit or its proxy means
// nothing was recorded. Where a connection broke after Gerrit had recorded
// the request, the retry repeats a review's message (its votes are the same
// votes), and a submit that went through comes back as "change is merged",
// which Submit reports as SubmitAlreadyMerged.
type Client struct {
	gc      *gogerrit.Client
	rc      *retryablehttp.Client
	log     *slog.Logger
	timeout time.Duration
	web     *url.URL
	onResp  func(status int, err error)
	// pageSize is the n= of paged queries; tests lower it.
	pageSize int
	now      func() time.Time
}

// NewClient builds a client. It reads the password file and checks the
// configuration, but does not contact Gerrit.
func NewClient(cfg ClientConfig) (*Client, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("gerrit: REST URL %q: want an absolute http(s) URL", cfg.URL)
	}
	if base.User != nil {
		return nil, fmt.Errorf("gerrit: REST URL must not hold credentials; use the user and password file settings")
	}
	web := base
	if cfg.WebURL != "" {
		if web, err = url.Parse(cfg.WebURL); err != nil || web.Host == "" {
			return nil, fmt.Errorf("gerrit: web URL %q: want an absolute URL", cfg.WebURL)
		}
	}
	if cfg.User == "" {
		return nil, errors.New("gerrit: REST user is not set")
	}
	password, err := readPasswordFile(cfg.PasswordFile)
	if err != nil {
		return nil, err
	}
	c := &Client{
		log:      cfg.Logger,
		timeout:  cfg.Timeout,
		web:      web,
		onResp:   cfg.OnResponse,
		pageSize: 250,
		now:      time.Now,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRESTTimeout
	}
	rc := retryablehttp.NewClient()
	rc.Logger = nil // the hooks below log through slog
	rc.RetryMax = cfg.RetryMax
	switch {
	case cfg.RetryMax == 0:
		rc.RetryMax = DefaultRetryMax
	case cfg.RetryMax < 0:
		rc.RetryMax = 0
	}
	rc.RetryWaitMin, rc.RetryWaitMax = cfg.RetryWaitMin, cfg.RetryWaitMax
	if rc.RetryWaitMin <= 0 {
		rc.RetryWaitMin = DefaultRetryWaitMin
	}
	if rc.RetryWaitMax <= 0 {
		rc.RetryWaitMax = DefaultRetryWaitMax
	}
	if rc.RetryWaitMax < rc.RetryWaitMin {
		rc.RetryWaitMax = rc.RetryWaitMin
	}
	rc.CheckRetry = c.checkRetry
	rc.Backoff = c.backoff
	rc.ErrorHandler = lastResponse
	rc.RequestLogHook = c.logRequest
	c.rc = rc

	// go-gerrit probes digest, basic and cookie auth when the URL holds
	// credentials; set Basic auth explicitly instead, without a probe.
	gc, err := gogerrit.NewClient(context.Background(), base.String(), rc.StandardClient())
	if err != nil {
		return nil, fmt.Errorf("gerrit: %w", err)
	}
	gc.Authentication.SetBasicAuth(cfg.User, password)
	c.gc = gc
	return c, nil
}

// readPasswordFile reads an HTTP password; one trailing newline (LF or
// CRLF), as editors and `echo` leave it, is not part of the password.
func readPasswordFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("gerrit: REST password file is not set")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("gerrit: reading password file: %w", err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("gerrit: password file %s is empty", path)
	}
	return s, nil
}

// checkRetry is the retry policy: 5xx (but 501), 429 and connection errors
// are retried; 4xx and the caller's cancellation are not.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if c.onResp != nil {
		if err != nil {
			c.onResp(0, err)
		} else {
			c.onResp(resp.StatusCode, nil)
		}
	}
	if err != nil {
		// Connection errors; the library's policy excludes TLS trust
		// failures, bad schemes and redirect loops, which do not heal.
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	code := resp.StatusCode
	if code != http.StatusTooManyRequests && (code < 500 || code == http.StatusNotImplemented) {
		return false, nil
	}
	if wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
		if deadline, has := ctx.Deadline(); has && c.now().Add(wait).After(deadline) {
			return false, nil // give the answer back instead of timing out
		}
	}
	return true, nil
}

// backoff waits what the server's Retry-After asks, or min·2^attempt
// capped at max.
func (c *Client) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	wait := maxWait
	if attempt < 30 && minWait<<attempt < maxWait {
		wait = minWait << attempt
	}
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			wait = d
		}
		if req := resp.Request; req != nil {
			c.log.Info("gerrit request will be retried",
				"method", req.Method, "path", req.URL.Path, "status", resp.StatusCode, "wait", wait)
		}
	}
	return wait
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. A date in the past means no wait.
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 || n > int64(24*time.Hour/time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// lastResponse hands the last response to the caller once retries are
// exhausted, so that Gerrit's status and message reach it.
func lastResponse(resp *http.Response, err error, _ int) (*http.Response, error) {
	if err != nil {
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			_ = resp.Body.Close()
		}
		return nil, err
	}
	return resp, nil
}

func (c *Client) logRequest(_ retryablehttp.Logger, req *http.Request, attempt int) {
	if attempt == 0 {
		c.log.Debug("gerrit request", "method", req.Method, "path", req.URL.Path)
		return
	}
	c.log.Warn("gerrit request retry", "method", req.Method, "path", req.URL.Path, "attempt", attempt+1)
}

// ErrNotFound is matched (errors.Is) by an *APIError of status 404.
var ErrNotFound = errors.New("not found")

// APIError is a failed REST request: Gerrit's status and its own message
// (the plain-text body), or, with Status 0, a connection error or timeout.
type APIError struct {
	Op      string // "GET changes/org%2Fproject~12"
	Status  int
	Message string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
	Err        error
}

func (e *APIError) Error() string {
	switch {
	case e.Status == 0:
		return fmt.Sprintf("gerrit: %s: %v", e.Op, e.Err)
	case e.Message == "":
		return fmt.Sprintf("gerrit: %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("gerrit: %s: %d %s", e.Op, e.Status, e.Message)
}

func (e *APIError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Transient reports whether trying again later may succeed: connection
// errors, timeouts, 5xx and 429.
func (e *APIError) Transient() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// IsTransient reports whether err is a REST failure that may heal: see
// APIError.Transient and SubmitTransient. The caller's own cancellation is
// not transient.
func IsTransient(err error) bool {
	var se *SubmitError
	if errors.As(err, &se) {
		return se.Kind == SubmitTransient
	}
	var ae *APIError
	return errors.As(err, &ae) && ae.Transient()
}

// changePath is the REST id of a change: project~number, the project
// path-escaped ("org%2Fproject~12"). Never a bare Change-Id, which repeats
// across projects and branches.
func changePath(key pipeline.ChangeKey) string {
	return "changes/" + url.PathEscape(key.Project) + "~" + strconv.Itoa(key.Number)
}

// call runs one REST request through f under the per-request timeout and
// turns its failure into an *APIError (or the caller's ctx error).
func (c *Client) call(ctx context.Context, op string, f func(ctx context.Context) (*gogerrit.Response, error)) error {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := c.now()
	resp, err := f(rctx)
	if err == nil {
		c.log.Debug("gerrit response", "op", op, "status", resp.StatusCode, "elapsed", c.now().Sub(start))
		return nil
	}
	if resp != nil && resp.Response != nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		ae := &APIError{Op: op, Status: resp.StatusCode, Message: strings.TrimSpace(string(body))}
		ae.RetryAfter, _ = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		c.log.Debug("gerrit error response", "op", op, "status", ae.Status, "message", ae.Message)
		return ae
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("gerrit: %s: %w", op, ctx.Err())
	case rctx.Err() != nil:
		return &APIError{Op: op, Err: fmt.Errorf("no answer within %v: %w", c.timeout, context.DeadlineExceeded)}
	case errors.As(err, new(*buildError)), resp != nil:
		return fmt.Errorf("gerrit: %s: %w", op, err)
	}
	return &APIError{Op: op, Err: err}
}

// do is call for a plain request: body is JSON-encoded, out JSON-decoded
// (Gerrit's )]}' prefix removed), or written raw when it is an io.Writer.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.call(ctx, method+" "+path, func(ctx context.Context) (*gogerrit.Response, error) {
		req, err := c.gc.NewRequest(ctx, method, path, body)
		if err != nil {
			return nil, &buildError{err}
		}
		return c.gc.Do(req, out)
	})
}

// buildError is a request that could not be built: not transient.
type buildError struct{ err error }

func (e *buildError) Error() string { return "building request: " + e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

// changeURL is the web URL of a change: <web>/c/<project>/+/<number>.
func (c *Client) changeURL(key pipeline.ChangeKey) string {
	return strings.TrimSuffix(c.web.String(), "/") + "/c/" + key.Project + "/+/" + strconv.Itoa(key.Number)
}
