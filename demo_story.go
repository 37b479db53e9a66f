package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
)

// The story of `seakeeper demo`: people upload, review and recheck changes
// of the sample projects in the fake Gerrit, and the story waits, with a
// generous deadline, for what Seakeeper does about them. It checks the
// outcome it tells: a stalled or different outcome is an error.

// storyStepTimeout bounds each wait of the story; the whole story normally
// takes well under a minute.
const storyStepTimeout = 2 * time.Minute

// The people of the story.
const (
	alice = "alice" // works on demo/lib
	bob   = "bob"   // works on demo/app
	carol = "carol" // reviews both
)

// storySummary is what the story ended with.
type storySummary struct {
	// Merged lists the changes in the order they merged, as "demo/lib 1".
	Merged []string
	// Failed is the change that broke the gate, and FixedIn the patchset
	// that merged.
	Failed  string
	FixedIn int
	// Tips are the branch tips at the end, by project.
	Tips map[string]string
	// Workflows counts the workflows that ran, by pipeline.
	Workflows map[string]int
}

func (s *storySummary) workflowCounts() string {
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(s.Workflows)) {
		parts = append(parts, fmt.Sprintf("%s %d", p, s.Workflows[p]))
	}
	return strings.Join(parts, ", ")
}

// story holds what the story needs while it plays.
type story struct {
	ctx       context.Context
	g         *gerrittest.Server
	workflows versioned.Interface
	n         *narrator
}

// storyChange is a change of the story, once uploaded.
type storyChange struct {
	project string
	number  int
	subject string
}

func (c storyChange) String() string { return fmt.Sprintf("%s %d", c.project, c.number) }

// playStory plays the story against g, narrating to n.
func playStory(ctx context.Context, g *gerrittest.Server, workflows versioned.Interface, n *narrator) (*storySummary, error) {
	s := &story{ctx: ctx, g: g, workflows: workflows, n: n}

	n.act("1. Four uploads. The check pipeline tests each change on its own, on top of its branch.")
	farewell, err := s.upload(alice, gerrittest.ChangeSpec{Project: "demo/lib", Subject: "Add farewell()",
		Body: "A house style test comes along: every message of the library ends with \"!\".",
		Files: map[string]string{
			"farewell.sh":               "# farewell NAME prints a farewell for NAME.\nfarewell() {\n\tprintf 'Goodbye, %s!\\n' \"$1\"\n}\n",
			"tests/farewell_test.sh":    ". ./farewell.sh\ngot=$(farewell World)\nwant='Goodbye, World!'\n[ \"$got\" = \"$want\" ] || { echo \"farewell World = '$got', want '$want'\"; exit 1; }\n",
			"tests/house_style_test.sh": houseStyleTest,
		}})
	if err != nil {
		return nil, err
	}
	byDefault, err := s.upload(bob, gerrittest.ChangeSpec{Project: "demo/app", Subject: "Greet the world by default",
		Files: map[string]string{
			"app.sh":                "#!/bin/sh\n# demo/app greets the name given on the command line.\necho \"Hi ${1:-world}\"\n",
			"tests/default_test.sh": "got=$(sh ./app.sh)\nwant='Hi world'\n[ \"$got\" = \"$want\" ] || { echo \"app.sh = '$got', want '$want'\"; exit 1; }\n",
		}})
	if err != nil {
		return nil, err
	}
	warmer, err := s.upload(alice, gerrittest.ChangeSpec{Project: "demo/lib", Subject: "Make the greeting warmer",
		Files: map[string]string{
			"greet.sh":            warmGreet("."),
			"tests/greet_test.sh": greetTest("Hello there, World."),
		}})
	if err != nil {
		return nil, err
	}
	bye, err := s.upload(bob, gerrittest.ChangeSpec{Project: "demo/app", Subject: "Say goodbye with farewell() of demo/lib",
		Body:      "It needs farewell(), which demo/lib gains in another change: hence the Depends-On.",
		DependsOn: []string{g.ChangeURL(farewell.project, farewell.number)},
		Files: map[string]string{
			"bye.sh":            "#!/bin/sh\n# bye.sh says goodbye with farewell() of demo/lib, installed in $LIB.\n. \"${LIB:-../lib}/farewell.sh\"\nfarewell \"${1:-world}\"\n",
			"tests/bye_test.sh": "sh -n ./bye.sh\n",
		}})
	if err != nil {
		return nil, err
	}
	n.say("(%s says Depends-On: %s)", bye, g.ChangeURL(farewell.project, farewell.number))
	for _, c := range []storyChange{farewell, byDefault, warmer, bye} {
		if err := s.waitVerified(c, 1, 1); err != nil {
			return nil, err
		}
	}
	n.say("Each change passes on its own: Verified +1 on all four.")

	n.act("2. Carol approves all four (Code-Review +2). The gate tests them together, in the\n" +
		"   shared queue \"demo\" of demo/lib and demo/app, each on top of the ones ahead of it.")
	for _, c := range []storyChange{farewell, warmer, bye, byDefault} {
		if err := s.approve(c); err != nil {
			return nil, err
		}
	}
	// The queue's order is the daemon's to decide (a change that needs
	// another is pulled in right behind it), so the story does not claim one.
	n.say("Approved: %s, %s, %s, %s; the status page shows the queue they formed.", farewell, warmer, bye, byDefault)
	if err := s.waitFor("the gate: three merges and one failure", func() (bool, error) {
		if merged, err := s.merged(warmer); err != nil || merged {
			return false, errors.Join(err, fmt.Errorf("%s merged, but it breaks the house style of %s", warmer, farewell))
		}
		v, err := s.verified(warmer, 1)
		if err != nil || v != -2 {
			return false, err
		}
		for _, c := range []storyChange{farewell, bye, byDefault} {
			if merged, err := s.merged(c); err != nil || !merged {
				return false, err
			}
		}
		return true, nil
	}); err != nil {
		return nil, err
	}
	n.say("%s passed on its own, but on top of %s it breaks the new house style test:\n"+
		"Verified -2, not merged. The changes behind it were tested again without it, and merged.\n"+
		"%s merged after %s, which its Depends-On names.", warmer, farewell, bye, farewell)

	n.act("3. Alice suspects a flaky test and comments \"recheck\".")
	if err := g.Comment(warmer.project, warmer.number, alice, "recheck"); err != nil {
		return nil, err
	}
	n.say("alice on %s: recheck", warmer)
	if err := s.waitVerified(warmer, 1, -1); err != nil {
		return nil, err
	}
	n.say("Not a flake: check now tests %s on top of the new master, which has %s: Verified -1.", warmer, farewell)

	n.act("4. Alice uploads patchset 2, rebased and in the house style; Carol approves it again.")
	if _, err := g.NewPatchset(warmer.project, warmer.number, gerrittest.PatchsetSpec{Rebase: true,
		Files: map[string]string{"greet.sh": warmGreet("!"), "tests/greet_test.sh": greetTest("Hello there, World!")}}); err != nil {
		return nil, err
	}
	n.say("alice uploads patchset 2 of %s", warmer)
	if err := s.waitVerified(warmer, 2, 1); err != nil {
		return nil, err
	}
	if err := s.approve(warmer); err != nil {
		return nil, err
	}
	if err := s.waitFor(warmer.String()+" to merge", func() (bool, error) { return s.merged(warmer) }); err != nil {
		return nil, err
	}

	// What the story tells must be what happened.
	sum := &storySummary{Merged: n.mergedOrder(), Failed: warmer.String(), FixedIn: 2, Tips: map[string]string{}}
	for _, p := range []string{"demo/lib", "demo/app"} {
		tip, err := g.Branch(p, "master")
		if err != nil {
			return nil, err
		}
		sum.Tips[p] = tip
	}

	n.act("5. After the merges, the post pipeline tests the new master of each project.")
	if err := s.waitFor("the post pipeline to test the new masters", func() (bool, error) {
		done, err := s.postDone(sum.Tips)
		if done != nil {
			sum.Workflows = done
		}
		return done != nil, err
	}); err != nil {
		return nil, err
	}
	n.say("Workflows run: %s", sum.workflowCounts())
	for _, c := range []storyChange{farewell, byDefault, bye, warmer} {
		if !slices.Contains(sum.Merged, c.String()) {
			return nil, fmt.Errorf("%s merged but no change-merged event was seen (seen: %s)", c, strings.Join(sum.Merged, ", "))
		}
	}
	if slices.Index(sum.Merged, bye.String()) < slices.Index(sum.Merged, farewell.String()) {
		return nil, fmt.Errorf("%s merged before %s, which its Depends-On names", bye, farewell)
	}
	if ch, err := g.Change(warmer.project, warmer.number); err != nil {
		return nil, err
	} else if ps := ch.Patchsets[len(ch.Patchsets)-1].Number; ps != 2 {
		return nil, fmt.Errorf("%s merged as patchset %d, want 2", warmer, ps)
	}
	return sum, nil
}

// houseStyleTest is demo/lib's test that every message ends with "!".
const houseStyleTest = `# House style: every message of the library ends with "!".
. ./greet.sh
. ./farewell.sh
for msg in "$(greet World)" "$(farewell World)"; do
	case $msg in
	*!) ;;
	*) echo "'$msg' does not end with '!' (house style)"; exit 1 ;;
	esac
done
`

// warmGreet is greet.sh of "Make the greeting warmer", ending with end.
func warmGreet(end string) string {
	return "# greet NAME prints a greeting for NAME.\ngreet() {\n\tprintf 'Hello there, %s" + end + "\\n' \"$1\"\n}\n"
}

// greetTest is demo/lib's test of greet, wanting want.
func greetTest(want string) string {
	return ". ./greet.sh\ngot=$(greet World)\nwant='" + want + "'\n[ \"$got\" = \"$want\" ] || { echo \"greet World = '$got', want '$want'\"; exit 1; }\n"
}

// upload creates a change as owner and says so.
func (s *story) upload(owner string, spec gerrittest.ChangeSpec) (storyChange, error) {
	spec.Owner = owner
	ch, err := s.g.CreateChange(spec)
	if err != nil {
		return storyChange{}, fmt.Errorf("uploading %q to %s: %w", spec.Subject, spec.Project, err)
	}
	c := storyChange{project: ch.Project, number: ch.Number, subject: ch.Subject}
	s.n.say("%s uploads %s %q  %s", owner, c, c.subject, changeLink(s.g, c))
	return c, nil
}

// approve votes Code-Review +2 on c as carol and says so.
func (s *story) approve(c storyChange) error {
	if err := s.g.Approve(c.project, c.number, "Code-Review", 2, carol); err != nil {
		return fmt.Errorf("approving %s: %w", c, err)
	}
	s.n.say("carol on %s: Code-Review +2", c)
	return nil
}

// verified returns the daemon's Verified vote on patchset ps of c (0 for
// none, or when ps is not the current patchset yet).
func (s *story) verified(c storyChange, ps int) (int, error) {
	votes, err := s.g.Votes(c.project, c.number)
	if err != nil {
		return 0, err
	}
	for _, v := range votes {
		if v.Label == "Verified" && v.User == s.g.User() && v.Patchset == ps {
			return v.Value, nil
		}
	}
	return 0, nil
}

func (s *story) merged(c storyChange) (bool, error) {
	ch, err := s.g.Change(c.project, c.number)
	if err != nil {
		return false, err
	}
	return ch.Status == "MERGED", nil
}

// waitVerified waits for the daemon's Verified vote want on patchset ps of c.
func (s *story) waitVerified(c storyChange, ps, want int) error {
	return s.waitFor(fmt.Sprintf("Verified %+d on %s patchset %d", want, c, ps), func() (bool, error) {
		v, err := s.verified(c, ps)
		return v == want, err
	})
}

// waitFor polls cond until it holds, fails, or storyStepTimeout passes.
func (s *story) waitFor(what string, cond func() (bool, error)) error {
	deadline := time.NewTimer(storyStepTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-s.ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, s.ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("the story stalled: no %s within %v", what, storyStepTimeout)
		case <-tick.C:
		}
	}
}

// postDone returns the number of workflows by pipeline once every
// workflow has finished and, for each project, a post workflow tested
// its tip; nil before.
func (s *story) postDone(tips map[string]string) (map[string]int, error) {
	list, err := s.workflows.ArgoprojV1alpha1().Workflows(metav1.NamespaceAll).List(s.ctx, metav1.ListOptions{LabelSelector: argo.LabelBuildSet})
	if err != nil {
		return nil, err
	}
	counts, tested := map[string]int{}, map[string]bool{}
	for _, wf := range list.Items {
		if !wf.Status.Phase.Completed() {
			return nil, nil
		}
		pipeline, project := wf.Annotations[argo.LabelPipeline], wf.Annotations[argo.LabelProject]
		counts[pipeline]++
		if pipeline != "post" || wf.Status.Phase != wfv1.WorkflowSucceeded {
			continue
		}
		for _, p := range wf.Spec.Arguments.Parameters {
			if p.Name == argo.ParamPrefix+"commit" && p.Value != nil && p.Value.String() == tips[project] {
				tested[project] = true
			}
		}
	}
	for p := range tips {
		if !tested[p] {
			return nil, nil
		}
	}
	return counts, nil
}

// changeLink is where a browser shows c: the fake Gerrit has no web UI,
// so it is the change's REST JSON with its votes and messages.
func changeLink(g *gerrittest.Server, c storyChange) string {
	return fmt.Sprintf("%s/changes/%d?o=DETAILED_LABELS&o=MESSAGES&pp=1", g.URL(), c.number)
}
