package gerrittest

import (
	"errors"
	"strings"
	"testing"
)

// approve gives a change the votes the default submit rule needs.
func approve(t *testing.T, s *Server, project string, n int) {
	t.Helper()
	must(t, s.Approve(project, n, "Code-Review", 2, "alice"))
	must(t, s.Approve(project, n, "Verified", 2, "seakeeper"))
}

func TestSubmitTypes(t *testing.T) {
	const (
		ff       = "ff"
		merge    = "merge"
		rebased  = "rebased"
		picked   = "picked"
		pathConf = "Change 1: " + problemPathConflict
		rebConf  = "Change 1: " + problemRebaseConflict
		notFF    = "Change 1: " + problemNotFastForward
	)
	want := map[SubmitType]map[string]string{ // scenario -> outcome
		MergeIfNecessary:  {"unchanged": ff, "moved": merge, "conflict": pathConf},
		MergeAlways:       {"unchanged": merge, "moved": merge, "conflict": pathConf},
		FastForwardOnly:   {"unchanged": ff, "moved": notFF, "conflict": notFF},
		RebaseIfNecessary: {"unchanged": ff, "moved": rebased, "conflict": rebConf},
		RebaseAlways:      {"unchanged": picked, "moved": picked, "conflict": rebConf},
		CherryPick:        {"unchanged": picked, "moved": picked, "conflict": pathConf},
	}
	for st, scenarios := range want {
		for scenario, outcome := range scenarios {
			t.Run(string(st)+"/"+scenario, func(t *testing.T) {
				s, _ := newFake(t, "p", st)
				base, err := s.PushToBranch("p", "master", map[string]string{"a.txt": "base\n", "b.txt": "base\n"}, "base", "admin")
				must(t, err)
				ch := mustChange(t, s, ChangeSpec{Project: "p", Owner: "dev", Files: map[string]string{"a.txt": "change\n"}})
				tip := base
				switch scenario {
				case "moved":
					tip, err = s.PushToBranch("p", "master", map[string]string{"b.txt": "moved\n"}, "elsewhere", "admin")
				case "conflict":
					tip, err = s.PushToBranch("p", "master", map[string]string{"a.txt": "conflict\n"}, "elsewhere", "admin")
				}
				must(t, err)
				approve(t, s, "p", ch.Number)
				nEvents := len(s.Events())
				got, err := s.Submit("p", ch.Number, "seakeeper")
				if strings.HasPrefix(outcome, "Change 1: ") {
					var e *Error
					if !errors.As(err, &e) || e.Status != 409 ||
						e.Message != "Failed to submit 1 change due to the following problems:\n"+outcome {
						t.Fatalf("err %v", err)
					}
					if now, _ := s.Branch("p", "master"); now != tip || len(s.Events()) != nEvents {
						t.Errorf("refused submit moved the branch or published events")
					}
					return
				}
				must(t, err)
				checkSubmitted(t, s, ch, got, tip, outcome, scenario)
				evs := s.Events()[nEvents:]
				if strings.Join(eventTypes(evs), " ") != "ref-updated change-merged" {
					t.Fatalf("events %v", eventTypes(evs))
				}
				ru, cm := evs[0].RefUpdate, evs[1]
				if ru.OldRev != tip || ru.NewRev != got.MergedAs || ru.RefName != "refs/heads/master" || ru.Project != "p" ||
					evs[0].Submitter.Username != "seakeeper" {
					t.Errorf("ref-updated %+v", evs[0])
				}
				if cm.NewRev != got.MergedAs || cm.Submitter.Username != "seakeeper" || cm.Change.Status != "MERGED" ||
					int(cm.PatchSet.Number) != len(got.Patchsets) || cm.PatchSet.Revision != got.Current().Revision {
					t.Errorf("change-merged %+v %+v", cm, cm.PatchSet)
				}
			})
		}
	}
}

// checkSubmitted verifies the branch history and tree after a submit.
func checkSubmitted(t *testing.T, s *Server, before, after *Change, tip, outcome, scenario string) {
	t.Helper()
	repo := s.projects["p"].repo
	head, err := s.Branch("p", "master")
	must(t, err)
	if after.Status != "MERGED" || after.MergedAs != head {
		t.Errorf("change %+v, branch %s", after, head)
	}
	c, err := repo.readCommit(head)
	must(t, err)
	ps := before.Current().Revision
	switch outcome {
	case "ff":
		if head != ps || len(after.Patchsets) != 1 {
			t.Errorf("not a fast-forward: head %s, change %s", head, ps)
		}
	case "merge":
		if len(c.parents) != 2 || c.parents[0] != tip || c.parents[1] != ps || c.message != "Merge \"Change 1\"\n" ||
			len(after.Patchsets) != 1 {
			t.Errorf("merge commit %+v (tip %s, change %s)", c, tip, ps)
		}
	case "rebased", "picked":
		if len(after.Patchsets) != 2 || head != after.Current().Revision || len(c.parents) != 1 || c.parents[0] != tip {
			t.Errorf("new commit %+v, patchsets %+v", c, after.Patchsets)
		}
		if c.author.name != "Dev" || c.committer.name != "Seakeeper" || !strings.Contains(c.message, "Change-Id: "+before.ChangeID) {
			t.Errorf("author %+v committer %+v message %q", c.author, c.committer, c.message)
		}
		footers := strings.Contains(c.message, "\nReviewed-on: "+s.URL()+"/c/p/+/1\nReviewed-by: Alice <alice@example.com>\nTested-by: Seakeeper <seakeeper@example.com>\n")
		if footers != (outcome == "picked") {
			t.Errorf("footers %v in %q", footers, c.message)
		}
		votes, _ := s.Votes("p", 1)
		if len(votes) != 2 {
			t.Errorf("votes not copied to the new patchset: %+v", votes)
		}
	}
	a, _ := s.ReadFile("p", head, "a.txt")
	b, _ := s.ReadFile("p", head, "b.txt")
	wantB := "base\n"
	if scenario == "moved" {
		wantB = "moved\n"
	}
	if string(a) != "change\n" || string(b) != wantB {
		t.Errorf("tree: a.txt %q b.txt %q", a, b)
	}
}

func TestSubmitNeedsParentChangeMerged(t *testing.T) {
	s, _ := newFake(t, "p", MergeIfNecessary)
	a := mustChange(t, s, ChangeSpec{Project: "p"})
	b := mustChange(t, s, ChangeSpec{Project: "p", ParentChange: a.Number})
	approve(t, s, "p", a.Number)
	approve(t, s, "p", b.Number)
	_, err := s.Submit("p", b.Number, "seakeeper")
	var e *Error
	if !errors.As(err, &e) || e.Message != "Failed to submit 1 change due to the following problems:\nChange 2: depends on change that was not submitted" {
		t.Fatalf("submit child first: %v", err)
	}
	_, err = s.Submit("p", a.Number, "seakeeper")
	must(t, err)
	got, err := s.Submit("p", b.Number, "seakeeper")
	must(t, err)
	if got.MergedAs != b.Current().Revision {
		t.Errorf("child not fast-forwarded: %s", got.MergedAs)
	}
}

func TestSubmitRebaseChainAfterParentRebased(t *testing.T) {
	s, _ := newFake(t, "p", RebaseIfNecessary)
	a := mustChange(t, s, ChangeSpec{Project: "p", Files: map[string]string{"a": "a\n"}})
	b := mustChange(t, s, ChangeSpec{Project: "p", ParentChange: a.Number, Files: map[string]string{"b": "b\n"}})
	_, err := s.PushToBranch("p", "master", map[string]string{"c": "c\n"}, "meanwhile", "admin")
	must(t, err)
	approve(t, s, "p", a.Number)
	approve(t, s, "p", b.Number)
	a2, err := s.Submit("p", a.Number, "seakeeper")
	must(t, err)
	b2, err := s.Submit("p", b.Number, "seakeeper")
	must(t, err)
	c, err := s.projects["p"].repo.readCommit(b2.MergedAs)
	must(t, err)
	if c.parents[0] != a2.MergedAs || len(b2.Patchsets) != 2 {
		t.Errorf("b not rebased onto a': parents %v, a' %s", c.parents, a2.MergedAs)
	}
	for _, f := range []string{"a", "b", "c"} {
		if _, err := s.ReadFile("p", "refs/heads/master", f); err != nil {
			t.Errorf("%s missing: %v", f, err)
		}
	}
}

func TestSubmitCherryPickIgnoresParents(t *testing.T) {
	s, _ := newFake(t, "p", CherryPick)
	a := mustChange(t, s, ChangeSpec{Project: "p", Files: map[string]string{"a": "a\n"}})
	b := mustChange(t, s, ChangeSpec{Project: "p", ParentChange: a.Number, Files: map[string]string{"b": "b\n"}})
	approve(t, s, "p", b.Number)
	_, err := s.Submit("p", b.Number, "seakeeper")
	must(t, err)
	if _, err := s.ReadFile("p", "master", "a"); err == nil {
		t.Error("the parent's file came along with the cherry-pick")
	}
	if _, err := s.ReadFile("p", "master", "b"); err != nil {
		t.Error(err)
	}
}

func TestMergeOutsideAndDirectPush(t *testing.T) {
	s, _ := newFake(t, "p", MergeIfNecessary)
	a := mustChange(t, s, ChangeSpec{Project: "p"})
	b := mustChange(t, s, ChangeSpec{Project: "p"})
	n := len(s.Events())
	tip, err := s.MergeOutside("p", a.Number, "human")
	must(t, err)
	if tip != a.Current().Revision {
		t.Errorf("not fast-forwarded: %s", tip)
	}
	tip2, err := s.MergeOutside("p", b.Number, "human")
	must(t, err)
	c, err := s.projects["p"].repo.readCommit(tip2)
	must(t, err)
	if len(c.parents) != 2 || c.parents[0] != tip || c.author.name != "Human" {
		t.Errorf("outside merge %+v", c)
	}
	pushed, err := s.PushToBranch("p", "stable", map[string]string{"x": "y"}, "new branch", "human")
	must(t, err)
	evs := s.Events()[n:]
	if got := strings.Join(eventTypes(evs), " "); got != "ref-updated change-merged ref-updated change-merged ref-updated" {
		t.Fatalf("events %s", got)
	}
	if evs[1].Submitter.Username != "human" || evs[1].NewRev != tip || evs[1].Change.Status != "MERGED" {
		t.Errorf("change-merged %+v", evs[1])
	}
	if last := evs[4].RefUpdate; last.OldRev != zeroRev || last.NewRev != pushed || last.RefName != "refs/heads/stable" {
		t.Errorf("branch creation %+v", last)
	}
	if _, err := s.Submit("p", a.Number, "seakeeper"); err == nil || err.Error() != "change is merged" {
		t.Errorf("submit of a merged change: %v", err)
	}
	if ch, _ := s.Change("p", a.Number); ch.Status != "MERGED" || ch.Submitter != "human" {
		t.Errorf("change %+v", ch)
	}
}
