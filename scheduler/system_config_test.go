package scheduler_test

// The configuration of the system tests' scenarios: the daemon's main
// configuration and the projects' seakeeper.yaml, whose workflow records
// what it tested.

import (
	"fmt"
	"strings"
)

// Links the reports must carry (kubernetes.argo-url and web.public-url).
const (
	sysArgoURL   = "http://argo.example.invalid"
	sysStatusURL = "http://status.example.invalid"
)

// sysPipelines are the pipelines a scenario picks from, as in default.yaml.
var sysPipelines = map[string]string{
	"check": `  - name: check
    manager: independent
    trigger:
      - event: [patchset-created]
      - event: [comment-added]
        comment: '(?im)^\s*recheck\s*$'
    require: {open: true, current-patchset: true}
    report:
      success: {labels: {Verified: 1}, message: Build succeeded (check pipeline).}
      failure: {labels: {Verified: -1}, message: Build failed (check pipeline).}
`,
	"gate": `  - name: gate
    manager: dependent
    precedence: high
    trigger:
      - event: [comment-added]
        approval: [{label: Code-Review, value: [2]}]
    require:
      open: true
      current-patchset: true
      approval: [{label: Code-Review, value: [2]}]
    report:
      success: {labels: {Verified: 2}, submit: true, message: Build succeeded (gate pipeline).}
      failure: {labels: {Verified: -2}, message: Build failed (gate pipeline).}
      merge-conflict: {labels: {Verified: -2}, message: Merge failed; please rebase the change.}
`,
	"post": `  - name: post
    manager: supercedent
    precedence: low
    trigger:
      - event: [ref-updated]
        ref: '^refs/heads/.*$'
`,
}

// sysMainConfig is the daemon's configuration; %s are filled by startSystem.
const sysMainConfig = `gerrit:
  url: %q
  ssh: %q
  user: %q
  ssh-key-file: ssh/id_ed25519
  known-hosts-file: ssh/known_hosts
  http-password-file: http-password
kubernetes:
  kubeconfig: %q
  create-namespaces: true
  argo-url: %q
  max-workflows: 10
  ttl: 1h
state-dir: state
web:
  listen: localhost:0 # unused: no public handler
  internal-listen: 127.0.0.1:0
  public-url: %q
  internal-url: %q
queues:
  - name: shared
    projects: [%s]
pipelines:
%s`

// sysCheckoutScript is the first step of every workflow. It marks the
// workflow started, waits for the test to release it, then fetches the
// speculative state of every project of the scenario from the daemon's git
// endpoint (its own project through the seakeeper-git-url parameter) and
// records what it got in <dir>/runs/<workflow>: per project the fetched
// commit and the subjects of the commits the branch got, oldest first
// (for a merge commit, the subject of the commit it merged), or "none"
// when the buildset did not touch the project.
const sysCheckoutScript = `set -eu
wf={{workflow.name}}
touch @DIR@/started/$wf
while [ ! -e @DIR@/release/all ] && [ ! -e @DIR@/release/{{workflow.parameters.seakeeper-change}}-{{workflow.parameters.seakeeper-patchset}} ]; do sleep 0.05; done
ws=@DIR@/ws/$wf
mkdir -p $ws
{
  echo "pipeline {{workflow.parameters.seakeeper-pipeline}}"
  echo "project {{workflow.parameters.seakeeper-project}}"
  echo "change {{workflow.parameters.seakeeper-change}}"
  echo "patchset {{workflow.parameters.seakeeper-patchset}}"
  echo "commit {{workflow.parameters.seakeeper-commit}}"
  for p in @PROJECTS@; do
    d=$ws/$(echo $p | tr / _)
    git init -q $d
    if [ "$p" = "{{workflow.parameters.seakeeper-project}}" ]; then
      git -C $d fetch -q {{workflow.parameters.seakeeper-git-url}} {{workflow.parameters.seakeeper-ref}}
    elif ! git -C $d fetch -q @GITBASE@/$p {{workflow.parameters.seakeeper-ref}} 2>/dev/null; then
      echo "none $p"
      continue
    fi
    git -C $d checkout -q FETCH_HEAD
    echo "head $p $(git -C $d rev-parse HEAD)"
    git -C $d log --first-parent --reverse --format='%H %P' HEAD | while read c p1 p2; do
      echo "log $p $(git -C $d log -1 --format=%s ${p2:-$c})"
    done
  done
} > @DIR@/runs/$wf.tmp
mv @DIR@/runs/$wf.tmp @DIR@/runs/$wf
`

// sysUnitTestsScript is the second step: it fails when any project's
// speculative tree holds a file named "broken".
const sysUnitTestsScript = `set -u
for f in @DIR@/ws/{{workflow.name}}/*/broken; do
  if [ -e "$f" ]; then
    echo "unit tests failed: $f is there" >&2
    exit 1
  fi
done
echo "unit tests passed"
`

// sysProjectConfig is the seakeeper.yaml of every project of a scenario:
// the same two-step workflow for each pipeline.
func sysProjectConfig(dir, gitBase string, projects, pipelines []string) string {
	r := strings.NewReplacer("@DIR@", dir, "@GITBASE@", gitBase, "@PROJECTS@", strings.Join(projects, " "))
	templates := `- name: main
  steps:
    - - name: checkout
        template: checkout
    - - name: unit-tests
        template: run-unit-tests
- name: checkout
  script:
    image: alpine/git
    command: [sh]
    source: |
` + indent(r.Replace(sysCheckoutScript), 6) + `- name: run-unit-tests
  script:
    image: alpine/git
    command: [sh]
    source: |
` + indent(r.Replace(sysUnitTestsScript), 6)
	var b strings.Builder
	b.WriteString("pipelines:\n")
	for _, p := range pipelines {
		fmt.Fprintf(&b, "  %s:\n    workflow:\n      spec:\n        entrypoint: main\n        templates:\n", p)
		b.WriteString(indent(templates, 10))
	}
	return b.String()
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString(pad)
		}
		b.WriteString(l)
	}
	return b.String()
}
