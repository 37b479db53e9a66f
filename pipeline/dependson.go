package pipeline

import (
	"regexp"
	"strconv"
	"strings"
)

// DependsOnKind says how a Depends-On footer names its change.
type DependsOnKind string

// Forms of Depends-On references.
const (
	DependsOnURL      DependsOnKind = "url"       // https://review.example.org/c/project/+/12345
	DependsOnNumber   DependsOnKind = "number"    // 12345
	DependsOnChangeID DependsOnKind = "change-id" // I0123... (legacy)
)

// DependsOn is one parsed Depends-On footer. The shell resolves it to a
// ChangeKey: a URL or number directly, a legacy Change-Id by querying Gerrit
// (preferring the depending change's project and branch).
type DependsOn struct {
	Kind DependsOnKind `json:"kind"`
	Raw  string        `json:"raw"`
	// Project is known for URLs of the /c/<project>/+/<n> form.
	Project string `json:"project,omitempty"`
	// Number is set for URLs and numbers.
	Number int `json:"number,omitempty"`
	// Host is the URL's host, to tell a reference to another Gerrit.
	Host     string `json:"host,omitempty"`
	ChangeID string `json:"changeId,omitempty"`
}

var (
	dependsOnLine = regexp.MustCompile(`(?im)^[ \t]*depends-on:[ \t]*(\S+)[ \t\r]*$`)
	changeIDRE    = regexp.MustCompile(`^I[0-9a-fA-F]{40}$`)
	// https://host[/prefix]/c/<project>/+/<number>[/...] or
	// https://host[/prefix]/#/c/<number>[/...] or https://host/<number>
	newURLRE    = regexp.MustCompile(`^https?://([^/\s]+)(?:/[^\s]*?)?/c/(.+?)/\+/([0-9]+)(?:[/?#].*)?$`)
	oldURLRE    = regexp.MustCompile(`^https?://([^/\s]+)(?:/[^\s]*?)?/(?:#/)?c/([0-9]+)(?:[/?#].*)?$`)
	bareURLRE   = regexp.MustCompile(`^https?://([^/\s]+)(?:/[^\s]*?)?/([0-9]+)/?$`)
	bareNumRE   = regexp.MustCompile(`^[0-9]+$`)
	trailerChar = ".,;)>"
)

// ParseDependsOn returns the Depends-On footers of a commit message in
// order, without duplicates. Lines it cannot read are ignored, as Gerrit and
// Zuul ignore them.
func ParseDependsOn(message string) []DependsOn {
	var out []DependsOn
	seen := map[DependsOn]bool{}
	for _, m := range dependsOnLine.FindAllStringSubmatch(message, -1) {
		raw := strings.TrimRight(m[1], trailerChar)
		raw = strings.TrimPrefix(raw, "<")
		d, ok := parseDependsOnRef(raw)
		if !ok {
			continue
		}
		key := d
		key.Raw = ""
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, d)
	}
	return out
}

func parseDependsOnRef(raw string) (DependsOn, bool) {
	d := DependsOn{Raw: raw}
	switch {
	case changeIDRE.MatchString(raw):
		d.Kind, d.ChangeID = DependsOnChangeID, raw
	case bareNumRE.MatchString(raw):
		n, err := strconv.Atoi(raw)
		if err != nil || n <= 0 {
			return d, false
		}
		d.Kind, d.Number = DependsOnNumber, n
	default:
		var host, project, num string
		if m := newURLRE.FindStringSubmatch(raw); m != nil {
			host, project, num = m[1], m[2], m[3]
		} else if m := oldURLRE.FindStringSubmatch(raw); m != nil {
			host, num = m[1], m[2]
		} else if m := bareURLRE.FindStringSubmatch(raw); m != nil {
			host, num = m[1], m[2]
		} else {
			return d, false
		}
		n, err := strconv.Atoi(num)
		if err != nil || n <= 0 {
			return d, false
		}
		project = unescapePath(project)
		d.Kind, d.Host, d.Project, d.Number = DependsOnURL, host, project, n
	}
	return d, true
}

// unescapePath decodes %XX escapes (Gerrit writes a project's slashes as
// %2F in URLs); a malformed escape leaves the text as it was. It stands in
// for net/url, which the core does not import.
func unescapePath(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
