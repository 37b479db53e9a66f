//go:build linux

package main

// The gate scenario the chaos tests run: projects of one shared queue,
// changes (some of which fail their tests), and the workflow that records
// what it tested.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
)

// chaosScript is the gate workflow's script. It fetches the speculative
// state of its project from the daemon's git endpoint (retrying while the
// daemon is down: it may be killed at any moment), records the change list
// under test, the commit and its tree, and fails if the tree holds a file
// named fail-*. The record, a directory named after the Workflow's UID
// under @RECORDS@, is moved into place only when complete; an incomplete
// one (<UID>.tmp) keeps the errors of the fetch attempts. @RECORDS@ and
// @GIT@ are replaced when the project config is written.
const chaosScript = `set -u
rec='@RECORDS@/{{workflow.uid}}'
tmp="$rec.tmp"
mkdir -p "$tmp" || exit 3
cat > "$tmp/changes.json" <<'CHAOS_EOF'
{{workflow.parameters.seakeeper-changes}}
CHAOS_EOF
echo '{{workflow.name}}' > "$tmp/name"
p='{{workflow.parameters.seakeeper-project}}'
ref='{{workflow.parameters.seakeeper-ref}}'
git init -q --bare tested.git || exit 3
n=0
until git -C tested.git fetch -q "@GIT@/git/$p" "+$ref:refs/tested" 2>fetch.err; do
  cat fetch.err >> "$tmp/fetch.err"
  if grep -q "couldn't find remote ref" fetch.err; then echo "$ref is gone" >&2; exit 1; fi
  n=$((n+1))
  if [ $n -ge 300 ]; then cat fetch.err >&2; exit 3; fi
  sleep 0.1
done
commit=$(git -C tested.git rev-parse refs/tested) || exit 3
tree=$(git -C tested.git rev-parse "refs/tested^{tree}") || exit 3
echo "$p $commit $tree" > "$tmp/trees"
verdict=pass
if git -C tested.git ls-tree --name-only "$commit" | grep -q '^fail-'; then verdict=fail; fi
echo "$verdict" > "$tmp/verdict"
mv "$tmp" "$rec" || exit 3
[ "$verdict" = pass ]
`

// chaosProjectConfig returns a project's seakeeper.yaml: the gate runs
// chaosScript.
func chaosProjectConfig(records, gitBase string) string {
	script := strings.NewReplacer("@RECORDS@", records, "@GIT@", gitBase).Replace(chaosScript)
	var b strings.Builder
	b.WriteString(`pipelines:
  gate:
    workflow:
      spec:
        entrypoint: test
        templates:
          - name: test
            script:
              image: alpine/git
              command: [sh]
              source: |
`)
	for _, line := range strings.SplitAfter(script, "\n") {
		if line != "" {
			b.WriteString("                " + line)
		}
	}
	return b.String()
}

// chaosChange is a change of a scenario.
type chaosChange struct {
	project string
	number  int
	fails   bool // it adds a fail-* file: every build that includes it fails
}

func (c chaosChange) String() string {
	s := fmt.Sprintf("%s~%d", c.project, c.number)
	if c.fails {
		s += " (fails)"
	}
	return s
}

// chaosScenario is a set of projects in one shared queue and their changes,
// with a directory for the daemon's state, log and the workflows' records.
type chaosScenario struct {
	w           *chaosWorld
	seed        uint64
	rng         *rand.Rand
	dir         string
	records     string
	projects    []string
	changes     []chaosChange
	cfgPath     string
	internalURL string
	d           *daemonProc
}

// chaosSubmitTypes are the submit types scenarios draw from.
var chaosSubmitTypes = []gerrittest.SubmitType{gerrittest.MergeIfNecessary, gerrittest.RebaseIfNecessary}

// newChaosScenario creates nProjects projects (0: 2 or 3 at random) with
// a random submit type each, and the scenario's configuration; no change
// yet.
func (w *chaosWorld) newChaosScenario(t *testing.T, seed uint64, nProjects int) *chaosScenario {
	t.Helper()
	s := &chaosScenario{w: w, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eac0ffee)), dir: t.TempDir()}
	s.records = filepath.Join(s.dir, "records")
	if err := os.MkdirAll(s.records, 0o700); err != nil {
		t.Fatal(err)
	}
	if nProjects == 0 {
		nProjects = 2 + s.rng.IntN(2)
	}
	prefix := w.uniqueName("chaos")
	for i := range nProjects {
		s.projects = append(s.projects, fmt.Sprintf("%s/%c", prefix, 'a'+i))
	}
	s.cfgPath, s.internalURL = w.writeChaosConfig(t, s.dir, prefix, s.projects)
	for _, p := range s.projects {
		typ := chaosSubmitTypes[s.rng.IntN(len(chaosSubmitTypes))]
		if err := w.gerrit.CreateProject(p, typ); err != nil {
			t.Fatal(err)
		}
		if _, err := w.gerrit.PushToBranch(p, "master", map[string]string{"README": p + "\n"}, "Initial commit\n", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := w.gerrit.PutConfigFile(p, argo.ConfigFileName, chaosProjectConfig(s.records, s.internalURL), ""); err != nil {
			t.Fatal(err)
		}
	}
	s.d = newDaemonProc(t, s.cfgPath, filepath.Join(s.dir, "daemon.log"))
	t.Cleanup(func() {
		if t.Failed() {
			s.diagnose(t)
		}
		s.keepLog(t)
		s.abandonOpen(t)
		w.deleteWorkflows(t, s.projects)
	})
	return s
}

// keepLog copies the daemon's log to $CHAOS_LOG_DIR/<seed>.log when that
// variable is set, to study runs that passed (a soak's slowest, say).
func (s *chaosScenario) keepLog(t *testing.T) {
	dir := os.Getenv("CHAOS_LOG_DIR")
	if dir == "" {
		return
	}
	path := filepath.Join(dir, fmt.Sprintf("%d.log", s.seed))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("CHAOS_LOG_DIR: %v", err)
	} else if err := os.WriteFile(path, []byte(s.d.logText()), 0o644); err != nil {
		t.Errorf("CHAOS_LOG_DIR: %v", err)
	}
}

// abandonOpen abandons the scenario's changes still open, so that they
// burden no later scenario's resync.
func (s *chaosScenario) abandonOpen(t *testing.T) {
	for _, c := range s.changes {
		if ch, err := s.w.gerrit.Change(c.project, c.number); err == nil && ch.Status == "NEW" {
			if err := s.w.gerrit.Abandon(c.project, c.number, "", "chaos scenario over"); err != nil {
				t.Errorf("abandoning %s: %v", c, err)
			}
		}
	}
}

// addChanges uploads n changes spread over the projects at random; those
// whose index is in failing add a fail-* file. Every change writes files
// of its own, so none conflicts with another.
func (s *chaosScenario) addChanges(t *testing.T, n int, failing []int) {
	t.Helper()
	for i := range n {
		p := s.projects[s.rng.IntN(len(s.projects))]
		files := map[string]string{fmt.Sprintf("c%02d.txt", i): fmt.Sprintf("change %d of %s\n", i, p)}
		fails := slices.Contains(failing, i)
		if fails {
			files[fmt.Sprintf("fail-c%02d", i)] = "this change fails its tests\n"
		}
		c, err := s.w.gerrit.CreateChange(gerrittest.ChangeSpec{Project: p, Subject: fmt.Sprintf("Chaos change %d", i), Files: files})
		if err != nil {
			t.Fatal(err)
		}
		s.changes = append(s.changes, chaosChange{project: p, number: c.Number, fails: fails})
	}
}

// approve votes Code-Review +2 on change i.
func (s *chaosScenario) approve(t *testing.T, i int) {
	t.Helper()
	c := s.changes[i]
	if err := s.w.gerrit.Approve(c.project, c.number, "Code-Review", 2, "reviewer"); err != nil {
		t.Fatalf("approving %s: %v", c, err)
	}
}

// outcome says where a change stands: merged, failed (still open with a
// failure report), or open without a verdict yet.
func (s *chaosScenario) outcome(c chaosChange) (string, error) {
	g := s.w.gerrit
	ch, err := g.Change(c.project, c.number)
	if err != nil {
		return "", err
	}
	switch ch.Status {
	case "MERGED":
		return "merged", nil
	case "NEW":
	default:
		return strings.ToLower(ch.Status), nil
	}
	votes, err := g.Votes(c.project, c.number)
	if err != nil {
		return "", err
	}
	for _, v := range votes {
		if v.Label == "Verified" && v.Value == -2 && v.User == g.User() {
			return "failed", nil
		}
	}
	msgs, err := g.Messages(c.project, c.number)
	if err != nil {
		return "", err
	}
	for _, m := range msgs {
		if m.Author == g.User() && m.Patchset == ch.Current().Number &&
			(strings.Contains(m.Text, "Build failed") || strings.Contains(m.Text, "Merge failed")) {
			return "failed", nil
		}
	}
	return "open", nil
}

// settled reports whether every change has its verdict.
func (s *chaosScenario) settled() bool {
	for _, c := range s.changes {
		if o, err := s.outcome(c); err != nil || o == "open" {
			return false
		}
	}
	return true
}

// chaosRecord is what one workflow recorded.
type chaosRecord struct {
	uid, name string
	changes   []argo.ChangeParam
	trees     map[string][2]string // project → {commit, tree}
	verdict   string
}

// readRecords reads the complete records of the scenario's workflows.
func (s *chaosScenario) readRecords() ([]chaosRecord, error) {
	entries, err := os.ReadDir(s.records)
	if err != nil {
		return nil, err
	}
	var out []chaosRecord
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		dir := filepath.Join(s.records, e.Name())
		r := chaosRecord{uid: e.Name(), trees: map[string][2]string{}}
		read := func(name string) string {
			b, rerr := os.ReadFile(filepath.Join(dir, name))
			if rerr != nil && err == nil {
				err = fmt.Errorf("record %s: %w", e.Name(), rerr)
			}
			return strings.TrimSpace(string(b))
		}
		r.name, r.verdict = read("name"), read("verdict")
		changes, trees := read("changes.json"), read("trees")
		if err != nil {
			return nil, err
		}
		if jerr := json.Unmarshal([]byte(changes), &r.changes); jerr != nil {
			return nil, fmt.Errorf("record %s: changes.json: %w", e.Name(), jerr)
		}
		for _, line := range strings.Split(trees, "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				return nil, fmt.Errorf("record %s: trees: bad line %q", e.Name(), line)
			}
			r.trees[f[0]] = [2]string{f[1], f[2]}
		}
		out = append(out, r)
	}
	return out, nil
}
