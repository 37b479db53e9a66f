package pipeline

import "github.com/seakeeper-ci/seakeeper/internal/yamlstrict"

// ParseConfig reads a pipeline configuration document (top-level keys
// pipelines and queues) strictly and compiles it. filename is used in
// messages only: ParseConfig does no I/O.
//
// On failure the error lists every problem, decoding and semantic alike, one
// per line, sorted by line, each "file:line: path: message"; the Config is
// then nil.
func ParseConfig(filename string, data []byte) (*Config, error) {
	var c Config
	lines, errs := yamlstrict.Decode(filename, data, &c)
	errs = append(errs, positionErrors(lines, c.Compile())...)
	if len(errs) > 0 {
		yamlstrict.Sort(errs)
		return nil, yamlstrict.List(errs)
	}
	return &c, nil
}

// positionErrors gives Compile's errors the line of their path, leaving out
// those about a value that decoding already reported as unusable.
func positionErrors(lines *yamlstrict.Lines, errs []ConfigError) []error {
	var out []error
	for _, e := range errs {
		if !lines.Reported(e.Path) {
			out = append(out, lines.Errorf(e.Path, "%s", e.Msg))
		}
	}
	return out
}
