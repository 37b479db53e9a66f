package store

import (
	"errors"
	"fmt"
)

// Errors that stop the daemon. Test for them with errors.Is; the error
// values returned carry a message naming the file.
var (
	// ErrInUse: another process holds the file.
	ErrInUse = errors.New("store already in use")
	// ErrSchema: the file (or the state in it) has a schema version this
	// build does not read. See SchemaError.
	ErrSchema = errors.New("unsupported store schema version")
	// ErrCorrupt: the file is not a readable Seakeeper store.
	ErrCorrupt = errors.New("corrupt store")
)

// SchemaError reports a schema version this build does not read. It matches
// ErrSchema.
type SchemaError struct {
	Path string
	// What is "store" (the file's layout) or "pipeline state".
	What      string
	Found     int
	Supported int
}

func (e *SchemaError) Error() string {
	hint := "a newer Seakeeper wrote it; run that version or newer"
	if e.Found < e.Supported {
		hint = "an older Seakeeper wrote it and this build has no migration for it"
	}
	return fmt.Sprintf("store %s: %s schema version %d, this build reads version %d (%s); the file was not modified",
		e.Path, e.What, e.Found, e.Supported, hint)
}

// Is makes errors.Is(err, ErrSchema) true.
func (e *SchemaError) Is(target error) bool { return target == ErrSchema }

// storeError is an error of one kind (ErrInUse, ErrCorrupt) with a message
// of its own and, optionally, the error that caused it.
type storeError struct {
	msg   string
	kind  error
	cause error
}

func (e *storeError) Error() string { return e.msg }

func (e *storeError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func corruptf(path string, cause error, format string, args ...any) error {
	detail := fmt.Sprintf(format, args...)
	if cause != nil {
		detail += ": " + cause.Error()
	}
	return &storeError{
		msg: fmt.Sprintf("store %s is corrupt or not a Seakeeper store: %s; the file was not modified "+
			"(move it aside and restore a backup, or start with an empty state)", path, detail),
		kind:  ErrCorrupt,
		cause: cause,
	}
}

func inUse(path string, waited fmt.Stringer, cause error) error {
	return &storeError{
		msg:   fmt.Sprintf("store %s is already in use by another process (waited %s)", path, waited),
		kind:  ErrInUse,
		cause: cause,
	}
}
