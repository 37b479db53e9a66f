package gerrittest

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault is an injected answer to one REST call (git smart HTTP is never
// faulted). Delay comes first; then, if Status is set, the call is
// answered with it instead of being served.
type Fault struct {
	Status int
	// RetryAfter is the Retry-After header value ("" for none).
	RetryAfter string
	// Delay holds the answer back (the client may time out meanwhile).
	Delay time.Duration
	// Body of the error; default the status text.
	Body string
}

// faults is the queue of pending faults and the request log.
type faults struct {
	mu    sync.Mutex
	queue []Fault
	log   []Request
}

// InjectFaults makes the next n REST calls meet f, after any faults
// already queued.
func (s *Server) InjectFaults(n int, f Fault) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	for range n {
		s.faults.queue = append(s.faults.queue, f)
	}
}

// FailNext makes the next n REST calls answer status (500, 503, 429 ...)
// with Gerrit-like plain text. A 429 carries "Retry-After: 1".
func (s *Server) FailNext(n, status int) {
	f := Fault{Status: status}
	if status == http.StatusTooManyRequests {
		f.RetryAfter = "1"
	}
	s.InjectFaults(n, f)
}

// SlowNext delays the answers of the next n REST calls by d.
func (s *Server) SlowNext(n int, d time.Duration) { s.InjectFaults(n, Fault{Delay: d}) }

// ClearFaults drops the faults not yet met.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.queue = nil
}

// PendingFaults is the number of faults not yet met.
func (s *Server) PendingFaults() int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return len(s.faults.queue)
}

// applyFault meets the next fault, if any; it returns false when it has
// answered the call itself.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request) bool {
	s.faults.mu.Lock()
	if len(s.faults.queue) == 0 {
		s.faults.mu.Unlock()
		return true
	}
	f := s.faults.queue[0]
	s.faults.queue = s.faults.queue[1:]
	s.faults.mu.Unlock()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		case <-s.ctx.Done():
			t.Stop()
			return false
		}
	}
	if f.Status == 0 {
		return true
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	body := f.Body
	if body == "" {
		body = http.StatusText(f.Status)
	}
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(f.Status)
	_, _ = io.WriteString(w, body)
	return false
}

// Request is a REST call as the server saw it, for tests to inspect.
type Request struct {
	Method string
	// Path is the escaped path, as sent (with /a/ when authenticated).
	Path   string
	Query  string
	User   string // "" when anonymous
	Body   []byte
	Status int
}

// logRequest appends to the request log.
func (s *Server) logRequest(r *http.Request, who *account, body []byte, status int) {
	req := Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: body, Status: status}
	if who != nil {
		req.User = who.Username
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.log = append(s.faults.log, req)
}

// Requests returns the REST calls answered so far (git traffic and calls
// refused by authentication excluded), oldest first.
func (s *Server) Requests() []Request {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return append([]Request(nil), s.faults.log...)
}
