package yamlstrict

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoIO keeps the package a function of its input (see doc.go): its
// files import nothing that reaches files, network, processes or clocks.
func TestNoIO(t *testing.T) {
	allowed := map[string]bool{
		"bytes": true, "cmp": true, "errors": true, "fmt": true, "io": true, "math": true, "reflect": true,
		"regexp": true, "slices": true, "strconv": true, "strings": true, "sync": true,
		"time":             true, // for time.Duration only
		"gopkg.in/yaml.v3": true,
	}
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %s; yamlstrict must not do I/O (if it is pure, add it to the list)", name, path)
			}
		}
	}
}
