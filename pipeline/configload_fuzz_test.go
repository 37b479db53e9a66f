package pipeline

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var fuzzErrorLine = regexp.MustCompile(`^fuzz\.yaml:([1-9][0-9]*): `)

// FuzzParseConfig checks that no document makes ParseConfig panic, and that
// what it returns keeps its promises: a Config that compiles again cleanly,
// or one problem per line, each with a line number, sorted, and the same on
// every run. Seeds: testdata/fuzz/FuzzParseConfig plus the example.
func FuzzParseConfig(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("testdata", "pipelines.yaml")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil Config without an error")
			}
			if errs := c.Compile(); len(errs) != 0 {
				t.Fatalf("a parsed Config does not compile again: %v", errs)
			}
			for i := range c.Pipelines {
				if c.Pipeline(c.Pipelines[i].Name) == nil {
					t.Fatalf("pipeline %q not found by name", c.Pipelines[i].Name)
				}
			}
			return
		}
		if c != nil {
			t.Fatal("a Config came back with an error")
		}
		text := err.Error()
		last := 0
		for _, line := range strings.Split(text, "\n") {
			m := fuzzErrorLine.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("problem without a file:line: prefix: %q", line)
			}
			n, _ := strconv.Atoi(m[1])
			if n < last {
				t.Fatalf("problems not sorted by line:\n%s", text)
			}
			last = n
		}
		if _, again := ParseConfig("fuzz.yaml", data); again == nil || again.Error() != text {
			t.Fatalf("a second run differs:\n%s\nthen:\n%v", text, again)
		}
	})
}
