//go:build !unix

package argolocal

import (
	"context"
	"errors"
)

// runProcess needs process groups, which only unix systems have here.
func runProcess(context.Context, *process) (int, error) {
	return 0, errors.New("argolocal runs processes on unix systems only")
}
