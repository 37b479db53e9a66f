package argo

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// permanent marks an error not worth retrying, whatever its kind.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// retryable marks an error worth retrying, whatever its kind.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// orNil returns nil for a nil error, else r.
func (r retryable) orNil() error {
	if r.err == nil {
		return nil
	}
	return r
}

func unwrapPermanent(err error) error {
	var p permanent
	if errors.As(err, &p) {
		return p.err
	}
	return err
}

// transient classifies Kubernetes errors: conflicts (the caller re-reads),
// timeouts, throttling and 5xx may heal; Forbidden (RBAC, quota), Invalid,
// BadRequest, NotFound and the like will not. An error without an API
// status is a transport failure (connection refused, reset, TLS) and is
// retried.
func transient(err error) bool {
	var p permanent
	var r retryable
	switch {
	case errors.As(err, &p):
		return false
	case errors.As(err, &r):
		return true
	case errors.Is(err, context.Canceled):
		return false
	case apierrors.IsConflict(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsUnexpectedServerError(err):
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return code >= 500 || code == 429
	}
	return true
}

// retry runs op until it succeeds, fails for good, or ctx ends, waiting
// between attempts as a.opts.Backoff says. It returns op's last error.
func (a *Adapter) retry(ctx context.Context, what string, op func(context.Context) error) error {
	delay := a.opts.Backoff.Initial
	for {
		err := op(ctx)
		a.apiError(what, err)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		a.log.Warn("retrying", "op", what, "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-a.clock.After(delay):
		}
		delay = min(2*delay, a.opts.Backoff.Max)
	}
}

// describe turns a permanent Kubernetes error into the message of a build
// result.
func describe(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Sprintf("Kubernetes refused the workflow (RBAC or quota): %v", err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return fmt.Sprintf("Kubernetes rejected the workflow as invalid: %v", err)
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("cannot create the workflow (does its namespace exist?): %v", err)
	}
	return err.Error()
}
