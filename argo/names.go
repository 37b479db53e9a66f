package argo

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// DefaultNamespaceTemplate is the namespace of a project's workflows when
// the main config names none.
const DefaultNamespaceTemplate = "ci-{project}"

// The labels Seakeeper puts on every Workflow. Their values are made valid
// label values (see LabelValue); the same keys are used as annotations
// holding the raw values.
const (
	LabelPipeline = "seakeeper.io/pipeline"
	LabelProject  = "seakeeper.io/project"
	LabelChange   = "seakeeper.io/change"
	LabelPatchset = "seakeeper.io/patchset"
	LabelItem     = "seakeeper.io/item"
	LabelBuildSet = "seakeeper.io/buildset"
	// LabelManaged marks namespaces Seakeeper created.
	LabelManaged = "seakeeper.io/managed"
)

// maxName is the longest DNS-1123 label, and the longest label value.
const maxName = 63

// hash8 is a short, stable digest of s.
func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// dnsLabelish maps s onto DNS-1123 label characters: lower case, every
// other character a dash, runs of dashes collapsed, no dash at either end.
// It says whether that changed anything.
func dnsLabelish(s string) (string, bool) {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	return out, out != s
}

// truncate cuts s to n bytes and drops trailing characters for which keep
// is false (a label must end with an alphanumeric character).
func truncate(s string, n int, keep func(byte) bool) string {
	if len(s) > n {
		s = s[:n]
	}
	for len(s) > 0 && !keep(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Namespace returns the namespace of project's workflows: template (default
// ci-{project}) with {project} replaced by the project name made DNS-1123
// label characters, the whole a DNS-1123 label of at most 63 characters.
//
// A Gerrit project name is case-sensitive and may hold slashes, dots and
// underscores, so any change made to fit the label syntax can make two
// projects meet ("org/app", "org-app", "Org/App"); the namespace is a trust
// boundary, so whenever sanitising changed the name, or it had to be
// truncated, an 8-hex-digit hash of the unsanitised name is appended:
// "org/app" gives "ci-org-app-<hash>", "tools" gives "ci-tools".
func Namespace(template, project string) string {
	if template == "" {
		template = DefaultNamespaceTemplate
	}
	p, changed := dnsLabelish(project)
	changed = changed && strings.Contains(template, "{project}")
	ns, changed2 := dnsLabelish(strings.ReplaceAll(template, "{project}", p))
	if !changed && !changed2 && ns != "" && len(ns) <= maxName {
		return ns
	}
	h := hash8(strings.ReplaceAll(template, "{project}", project))
	if ns = truncate(ns, maxName-len(h)-1, isLowerAlnum); ns == "" {
		return "ns-" + h
	}
	return ns + "-" + h
}

// LabelValue returns s as a Kubernetes label value: s itself when it is one
// (at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends);
// otherwise s with every other character made a dash, cut so that with
// "-<hash of s>" appended it fits. The raw value goes into an annotation.
func LabelValue(s string) string {
	if validLabelValue(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			b[i] = '-'
		}
	}
	h := hash8(s)
	v := strings.TrimLeftFunc(string(b), func(r rune) bool { return r < 128 && !isAlnum(byte(r)) })
	if v = truncate(v, maxName-len(h)-1, isAlnum); v == "" {
		return h
	}
	return v + "-" + h
}

func validLabelValue(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > maxName || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// WorkflowName returns the deterministic name of the Workflow of a build
// action: sk-<pipeline>-<change>-<patchset>-<hash> (sk-<pipeline>-<hash>
// for a ref), at most 63 characters. The hash covers pipeline, project,
// change, patchset and buildset, so the same action always gets the same
// name and a replayed submit finds the Workflow it created before.
func WorkflowName(a pipeline.Action) string {
	h := hash8(strings.Join([]string{a.Pipeline, a.Change.Project, strconv.Itoa(a.Change.Number),
		strconv.Itoa(a.Change.Patchset), a.BuildSet}, "\x00"))
	tail := "-" + h
	if a.Change.Number != 0 {
		tail = "-" + strconv.Itoa(a.Change.Number) + "-" + strconv.Itoa(a.Change.Patchset) + tail
	}
	p, _ := dnsLabelish(a.Pipeline)
	if p = truncate(p, maxName-len("sk-")-len(tail), isLowerAlnum); p == "" {
		p = "x"
	}
	return "sk-" + p + tail
}
