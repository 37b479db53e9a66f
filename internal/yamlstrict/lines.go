package yamlstrict

import (
	"fmt"
	"strings"
)

// Pos is a 1-based position in a document.
type Pos struct{ Line, Column int }

// Lines records where each value of a decoded document was written, by
// path: struct fields and map keys are joined with dots, list elements get
// "[i]", so "pipelines[1].report.success.labels.Verified". The root is "".
// A nil *Lines knows no positions.
type Lines struct {
	file   string
	pos    map[string]Pos
	failed map[string]bool
}

func newLines(file string) *Lines {
	return &Lines{file: file, pos: map[string]Pos{}, failed: map[string]bool{}}
}

// File is the file name given to Decode.
func (l *Lines) File() string {
	if l == nil {
		return ""
	}
	return l.file
}

// Lookup returns the position recorded for path itself, for a key the
// position of the key.
func (l *Lines) Lookup(path string) (Pos, bool) {
	if l == nil {
		return Pos{}, false
	}
	p, ok := l.pos[path]
	return p, ok
}

// Nearest returns the position of path or, when path was not written in the
// document (a missing key, say), of its nearest ancestor that was.
func (l *Lines) Nearest(path string) Pos {
	for {
		if p, ok := l.Lookup(path); ok {
			return p
		}
		parent, ok := Parent(path)
		if !ok {
			return Pos{}
		}
		path = parent
	}
}

// Line is Nearest(path).Line: 0 when nothing is known.
func (l *Lines) Line(path string) int { return l.Nearest(path).Line }

// Errorf returns an error about the value at path, positioned at the
// nearest recorded line.
func (l *Lines) Errorf(path, format string, args ...any) *Error {
	p := l.Nearest(path)
	return &Error{File: l.File(), Line: p.Line, Column: p.Column, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Reported reports whether decoding already found the value at path, or a
// value containing it, unusable (wrong kind, bad scalar). A semantic check of
// that value would only repeat the problem in other words, so callers drop
// their own errors for such paths.
func (l *Lines) Reported(path string) bool {
	if l == nil {
		return false
	}
	for {
		if l.failed[path] {
			return true
		}
		parent, ok := Parent(path)
		if !ok {
			return false
		}
		path = parent
	}
}

func (l *Lines) record(path string, line, column int) {
	if _, ok := l.pos[path]; !ok {
		l.pos[path] = Pos{Line: line, Column: column}
	}
}

// Parent returns the path of the value containing the one at path:
// "a.b[2]" → "a.b" → "a" → "". ok is false for the root.
func Parent(path string) (parent string, ok bool) {
	if path == "" {
		return "", false
	}
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i], true
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i], true
	}
	return "", true
}

// Key returns the path of a struct field or map key under parent.
func Key(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// Index returns the path of list element i under parent.
func Index(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
