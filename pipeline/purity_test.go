package pipeline

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The core must not do I/O of any kind (see doc.go). These tests hold it to
// that: by what it links (go list -deps) and by what its source calls.

// deniedDeps are packages the core must not depend on, even indirectly. A
// name ending in "/" denies every package under that path, the name itself
// included. "os" itself is not here: fmt and encoding/json bring it in; the
// core's own use of it is caught by deniedImports instead.
var deniedDeps = []string{
	"net/",       // network, HTTP, RPC, SMTP, ...
	"os/exec",    // processes
	"os/signal",  // signals
	"os/user",    // user database
	"plugin",     // dynamic loading
	"database/",  // SQL
	"log/syslog", // network logging
	"crypto/tls",
	"math/rand/", // randomness: the core is deterministic
	"crypto/rand",
	"io/ioutil",
	"embed",
	"runtime/cgo", // C code
	"go.etcd.io/bbolt",
	"go.etcd.io/",
	"k8s.io/",
	"sigs.k8s.io/",
	"github.com/argoproj/",
	"github.com/andygrunwald/go-gerrit",
	"golang.org/x/crypto/ssh",
	"golang.org/x/net/",
	"google.golang.org/grpc",
	"github.com/seakeeper-ci/seakeeper/scheduler",
	"github.com/seakeeper-ci/seakeeper/gerrit",
	"github.com/seakeeper-ci/seakeeper/store",
	"github.com/seakeeper-ci/seakeeper/merger",
	"github.com/seakeeper-ci/seakeeper/argo",
	"github.com/seakeeper-ci/seakeeper/cmd/",
}

// deniedImports are packages the core's own (non-test) files must not
// import directly, beyond deniedDeps.
var deniedImports = []string{
	"os",
	"io/fs",
	"path/filepath",
	"syscall",
	"unsafe",
	"runtime",
	"runtime/debug",
	"time/tzdata",
	"log",
	"log/slog",
}

func denied(list []string, pkg string) bool {
	for _, d := range list {
		if pkg == d || strings.HasSuffix(d, "/") && (pkg == strings.TrimSuffix(d, "/") || strings.HasPrefix(pkg, d)) {
			return true
		}
	}
	return false
}

func TestPurityDeps(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	// One line per package: its path, then its direct imports.
	cmd := exec.Command(goTool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || strings.Fields(lines[len(lines)-1])[0] != "github.com/seakeeper-ci/seakeeper/pipeline" {
		t.Fatalf("go list -deps printed something unexpected:\n%s", out)
	}
	importers := map[string][]string{}
	var deps []string
	for _, line := range lines {
		f := strings.Fields(line)
		deps = append(deps, f[0])
		for _, imp := range f[1:] {
			importers[imp] = append(importers[imp], f[0])
		}
	}
	for _, d := range deps {
		if denied(deniedDeps, d) {
			t.Errorf("the pipeline package depends on %s (imported by %s); the core must stay free of I/O",
				d, strings.Join(importers[d], ", "))
		}
	}
}

func TestDenyListMatches(t *testing.T) {
	for _, pkg := range []string{"net", "net/http", "net/netip", "os/exec", "database/sql", "go.etcd.io/bbolt",
		"k8s.io/client-go/kubernetes", "math/rand", "math/rand/v2", "github.com/andygrunwald/go-gerrit"} {
		if !denied(deniedDeps, pkg) {
			t.Errorf("%s is not denied", pkg)
		}
	}
	for _, pkg := range []string{"os", "netx", "fmt", "math", "time", "syscall", "internal/poll"} {
		if denied(deniedDeps, pkg) {
			t.Errorf("%s is denied", pkg)
		}
	}
}

// sourceFiles parses the package's non-test Go files.
func sourceFiles(t *testing.T) (*token.FileSet, map[string]*ast.File) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
	}
	if len(files) == 0 {
		t.Fatal("no source files found")
	}
	return fset, files
}

// deniedTimeFuncs read the wall clock, sleep or start timers; the core's
// only clock is Event.Time.
var deniedTimeFuncs = map[string]bool{
	"Now": true, "Sleep": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
	"Tick": true, "NewTimer": true, "NewTicker": true, "LoadLocation": true,
}

func TestPuritySource(t *testing.T) {
	fset, files := sourceFiles(t)
	type problem struct {
		pos token.Position
		msg string
	}
	var problems []problem
	add := func(pos token.Pos, format string, args ...any) {
		problems = append(problems, problem{fset.Position(pos), fmt.Sprintf(format, args...)})
	}
	for _, f := range files {
		timeNames := map[string]bool{}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if denied(deniedDeps, path) || denied(deniedImports, path) {
				add(imp.Pos(), "imports %s", path)
			}
			if path == "time" {
				name := "time"
				if imp.Name != nil {
					name = imp.Name.Name
				}
				timeNames[name] = true
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				add(n.Pos(), "starts a goroutine")
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && timeNames[x.Name] && deniedTimeFuncs[n.Sel.Name] {
					add(n.Pos(), "uses %s.%s: the core's only clock is Event.Time", x.Name, n.Sel.Name)
				}
			}
			return true
		})
	}
	sort.Slice(problems, func(i, j int) bool {
		a, b := problems[i].pos, problems[j].pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Offset < b.Offset
	})
	for _, p := range problems {
		t.Errorf("%s:%d: %s", p.pos.Filename, p.pos.Line, p.msg)
	}
}

// TestPuritySourceText is the plain grep version of TestPuritySource, for
// what an AST walk cannot see through (a dot import, say). It looks at code
// only: comment lines and the comment part of a line are skipped.
func TestPuritySourceText(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	needles := []string{"time.Now(", "time.Sleep(", "math/rand", `"os"`, `"net"`, `"net/`, "go func"}
	var problems []string
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		inBlock := false
		for i, line := range strings.Split(string(data), "\n") {
			code := strings.TrimSpace(line)
			if inBlock {
				j := strings.Index(code, "*/")
				if j < 0 {
					continue
				}
				code, inBlock = strings.TrimSpace(code[j+2:]), false
			}
			if j := strings.Index(code, "/*"); j >= 0 && !strings.Contains(code[j:], "*/") {
				code, inBlock = code[:j], true
			}
			if j := strings.Index(code, "//"); j >= 0 {
				code = code[:j] // may cut a string such as a URL: a miss, never a false alarm
			}
			where := name + ":" + strconv.Itoa(i+1)
			for _, n := range needles {
				if strings.Contains(code, n) {
					problems = append(problems, where+": contains "+n)
				}
			}
			if strings.HasPrefix(code, "go ") {
				problems = append(problems, where+": a go statement")
			}
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}
