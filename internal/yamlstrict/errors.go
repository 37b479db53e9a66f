package yamlstrict

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a document, positioned at a line.
type Error struct {
	File string
	// Line and Column are 1-based; Line 0 means the position is unknown.
	Line, Column int
	// Path names the value, e.g. "pipelines[1].trigger[0].comment"; it is
	// empty for problems of the document as a whole.
	Path string
	Msg  string
}

// Error formats the problem as "file:line: path: message", always on one
// line: line breaks in a path (a map key can hold any text) or a message are
// written as \n.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return oneLine.Replace(b.String())
}

var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// List is a set of problems reported together. Its text is one problem per
// line.
type List []error

func (l List) Error() string {
	s := make([]string, len(l))
	for i, err := range l {
		s[i] = err.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (l List) Unwrap() []error { return l }

// Sort orders errors by line, then column, then text, so that a report
// reads top to bottom and is the same on every run. Errors that are not
// *Error (or carry no line) come first.
func Sort(errs []error) {
	slices.SortStableFunc(errs, func(a, b error) int {
		pa, pb := position(a), position(b)
		if c := cmp.Compare(pa.Line, pb.Line); c != 0 {
			return c
		}
		if c := cmp.Compare(pa.Column, pb.Column); c != 0 {
			return c
		}
		return strings.Compare(a.Error(), b.Error())
	})
}

func position(err error) Pos {
	var e *Error
	if errors.As(err, &e) {
		return Pos{Line: e.Line, Column: e.Column}
	}
	return Pos{}
}
