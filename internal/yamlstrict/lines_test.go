package yamlstrict

import (
	"errors"
	"fmt"
	"testing"
)

func TestParent(t *testing.T) {
	for _, tc := range []struct {
		path, parent string
		ok           bool
	}{
		{"", "", false},
		{"pipelines", "", true},
		{"pipelines[1]", "pipelines", true},
		{"pipelines[1].trigger[0].comment", "pipelines[1].trigger[0]", true},
		{"report.success.labels.Code-Review", "report.success.labels", true},
		{"a]", "", true},
		{"x[0].a]", "x", true},
	} {
		parent, ok := Parent(tc.path)
		if parent != tc.parent || ok != tc.ok {
			t.Errorf("Parent(%q) = %q, %v; want %q, %v", tc.path, parent, ok, tc.parent, tc.ok)
		}
	}
	if Key("", "a") != "a" || Key("a", "b") != "a.b" || Index("a", 3) != "a[3]" {
		t.Error("Key/Index")
	}
}

func TestNilLines(t *testing.T) {
	var l *Lines
	if l.Line("a") != 0 || l.Reported("a") || l.File() != "" {
		t.Error("nil Lines must know nothing")
	}
	if got := l.Errorf("a.b", "bad %d", 1).Error(); got != ": a.b: bad 1" {
		t.Errorf("got %q", got)
	}
}

func TestErrorsSortAndList(t *testing.T) {
	errs := []error{
		&Error{File: "f", Line: 9, Path: "b", Msg: "later"},
		&Error{File: "f", Line: 2, Column: 7, Path: "z", Msg: "second"},
		&Error{File: "f", Line: 2, Column: 3, Path: "y", Msg: "first"},
		&Error{File: "f", Line: 2, Column: 7, Path: "a", Msg: "same place, sorted by text"},
		fmt.Errorf("no position"),
		&Error{File: "f", Msg: "whole file"},
	}
	Sort(errs)
	want := "f: whole file\nno position\nf:2: y: first\nf:2: a: same place, sorted by text\nf:2: z: second\nf:9: b: later"
	if got := List(errs).Error(); got != want {
		t.Errorf("sorted:\n%s\nwant:\n%s", got, want)
	}
	var e *Error
	if !errors.As(List(errs), &e) || e.Msg != "whole file" {
		t.Errorf("errors.As through List: %v", e)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"current-patchset", "http-password-file", "max-workflows", "name", "ssh-key-file"}
	for key, want := range map[string]string{
		"Name":           "name",
		"nmae":           "name",
		"http-password":  "http-password-file",
		"max_workflows":  "max-workflows",
		"ssh-keyfile":    "ssh-key-file",
		"current":        "current-patchset",
		"colour":         "",
		"n":              "",
		"zzzzzzzzzzzzzz": "",
	} {
		if got := suggest(key, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestErrorIsOneLine(t *testing.T) {
	e := &Error{File: "f", Line: 3, Path: "labels.a\nb", Msg: "bad `x\r\ny`"}
	if got, want := e.Error(), `f:3: labels.a\nb: bad `+"`x\\r\\ny`"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
