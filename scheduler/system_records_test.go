package scheduler_test

// What the system tests read back: the Workflows in Kubernetes and the
// records the workflows wrote of the speculative state they tested.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
)

// workflows lists the Seakeeper Workflows of the scenario's namespaces
// whose labels match selector ("" for all), oldest first: by creation
// (whole seconds), then by item, in enqueue order, then by buildset.
func (e *sysEnv) workflows(selector string) []wfv1.Workflow {
	e.t.Helper()
	sel := argo.LabelBuildSet
	if selector != "" {
		sel += "," + selector
	}
	var out []wfv1.Workflow
	for _, p := range e.projects {
		l, err := e.wf.ArgoprojV1alpha1().Workflows(argo.Namespace("", p)).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, l.Items...)
	}
	seq := func(wf *wfv1.Workflow) int {
		item := wf.Labels[argo.LabelItem]
		n, _ := strconv.Atoi(item[strings.LastIndex(item, "-")+1:])
		return n
	}
	slices.SortStableFunc(out, func(a, b wfv1.Workflow) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		if c := seq(&a) - seq(&b); c != 0 {
			return c
		}
		return strings.Compare(a.Labels[argo.LabelBuildSet], b.Labels[argo.LabelBuildSet])
	})
	return out
}

// phases returns the phase of each Workflow that workflows lists.
func (e *sysEnv) phases(selector string) map[string]wfv1.WorkflowPhase {
	out := map[string]wfv1.WorkflowPhase{}
	for _, wf := range e.workflows(selector) {
		out[wf.Name] = wf.Status.Phase
	}
	return out
}

// changeSelector selects the Workflows of a change's patchset.
func changeSelector(pipeline string, number, patchset int) string {
	return fmt.Sprintf("%s=%s,%s=%d,%s=%d", argo.LabelPipeline, pipeline, argo.LabelChange, number, argo.LabelPatchset, patchset)
}

// workflowURL is the Argo UI link of a Workflow, as reports must carry it.
func workflowURL(wf *wfv1.Workflow) string {
	return fmt.Sprintf("%s/workflows/%s/%s?uid=%s", sysArgoURL, wf.Namespace, wf.Name, wf.UID)
}

// sysRun is what one workflow recorded of the speculative state it tested.
type sysRun struct {
	Workflow         string
	Pipeline         string
	Project          string
	Change, Patchset int
	Commit           string              // the seakeeper-commit parameter
	Heads            map[string]string   // project → fetched commit
	Logs             map[string][]string // project → subjects, oldest first
	None             []string            // projects the buildset did not touch
}

// runs reads the records of the workflows that got through their
// checkout, in the order they were written.
func (e *sysEnv) runs() []sysRun {
	e.t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.dir, "runs"))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []sysRun
	var written []time.Time
	for _, ent := range entries {
		if strings.HasSuffix(ent.Name(), ".tmp") {
			continue
		}
		info, err := ent.Info()
		if err != nil {
			e.t.Fatal(err)
		}
		r, err := readRun(filepath.Join(e.dir, "runs", ent.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
		written = append(written, info.ModTime())
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int { return written[i].Compare(written[j]) })
	sorted := make([]sysRun, len(out))
	for i, k := range idx {
		sorted[i] = out[k]
	}
	return sorted
}

// treeMismatch says how the trees run r fetched differ from the
// speculative state of want (changes in queue order, the run's own last):
// per project, the branch (the base commits, then the project's subjects
// in tips, which merged outside the queue) plus the project's changes of
// want, in order. A project the buildset did not touch is accepted only
// when the changes of it in want are ahead of r's own and merged by now:
// the branch tip holds them then. "" means no difference.
func (e *sysEnv) treeMismatch(r sysRun, want []*gerrittest.Change, tips map[string][]string) string {
	var diffs []string
	for _, p := range e.projects {
		var subjects []string
		untouchedOK := true
		for _, ch := range want {
			if ch.Project != p {
				continue
			}
			subjects = append(subjects, ch.Subject)
			if ch.Number == r.Change || !e.merged(ch) {
				untouchedOK = false
			}
		}
		expect := append(sysBase(tips[p]...), subjects...)
		switch got, ok := r.Logs[p]; {
		case ok && !slices.Equal(got, expect):
			diffs = append(diffs, fmt.Sprintf("%s has %q, want %q", p, got, expect))
		case !ok && !slices.Contains(r.None, p):
			diffs = append(diffs, fmt.Sprintf("%s was not recorded", p))
		case !ok && !untouchedOK:
			diffs = append(diffs, fmt.Sprintf("%s was untouched, want %q", p, expect))
		}
	}
	return strings.Join(diffs, "; ")
}

// runsOf returns the records of one change's workflows in a pipeline.
func (e *sysEnv) runsOf(pipeline string, number int) []sysRun {
	return slices.DeleteFunc(e.runs(), func(r sysRun) bool { return r.Pipeline != pipeline || r.Change != number })
}

func readRun(path string) (sysRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return sysRun{}, err
	}
	defer f.Close()
	r := sysRun{Workflow: filepath.Base(path), Heads: map[string]string{}, Logs: map[string][]string{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		key, rest, _ := strings.Cut(sc.Text(), " ")
		var err error
		switch key {
		case "pipeline":
			r.Pipeline = rest
		case "project":
			r.Project = rest
		case "change":
			r.Change, err = strconv.Atoi(rest)
		case "patchset":
			r.Patchset, err = strconv.Atoi(rest)
		case "commit":
			r.Commit = rest
		case "none":
			r.None = append(r.None, rest)
		case "head", "log":
			p, v, ok := strings.Cut(rest, " ")
			if !ok {
				err = errors.New("no value after the project")
			} else if key == "head" {
				r.Heads[p] = v
			} else {
				r.Logs[p] = append(r.Logs[p], v)
			}
		default:
			err = fmt.Errorf("unknown key %q", key)
		}
		if err != nil {
			return r, fmt.Errorf("%s:%d: %v", path, n, err)
		}
	}
	return r, sc.Err()
}
