package scheduler

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var fuzzErrorLine = regexp.MustCompile(`^fuzz\.yaml:[1-9][0-9]*: `)

// FuzzParseMainConfig checks that no document makes ParseMainConfig panic
// and that every problem it reports is one line with a line number.
func FuzzParseMainConfig(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte(minimal))
	for _, name := range []string{"example.yaml", "broken.yaml"} {
		if data, err := os.ReadFile(filepath.Join("..", "testdata", "config", name)); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseMainConfig("fuzz.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil Config without an error")
			}
			return
		}
		if c != nil {
			t.Fatal("a Config came back with an error")
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !fuzzErrorLine.MatchString(line) {
				t.Fatalf("problem without a file:line: prefix: %q", line)
			}
		}
	})
}
