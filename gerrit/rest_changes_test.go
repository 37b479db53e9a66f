package gerrit

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	gogerrit "github.com/andygrunwald/go-gerrit"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

func changeID(n int) string { return "I" + sha(n) }

func rev(n int, message string, parents ...int) fakeRev {
	r := fakeRev{sha: sha(n), message: message}
	for _, p := range parents {
		r.parents = append(r.parents, sha(p))
	}
	return r
}

func ck(project string, n int) pipeline.ChangeKey {
	return pipeline.ChangeKey{Project: project, Number: n}
}

func TestChangeSnapshotResolvesDependencies(t *testing.T) {
	f := newRESTFake(t)
	add := func(project, branch string, n int, status string, revs ...fakeRev) *fakeChange {
		return f.add(&fakeChange{project: project, branch: branch, number: n, status: status,
			changeID: changeID(n), owner: "alice", revs: revs})
	}
	shared := changeID(3000)
	add("org/app", "master", 9, "", rev(901, "base v1", 1), rev(902, "base v2", 1), rev(903, "base v3", 1))
	msg := "Add feature\n\nIt needs things.\n\n" +
		"Depends-On: https://review.example.org/c/org/lib/+/20\n" +
		"Depends-On: 21\n" +
		"Depends-On: https://other.example.com/c/x/+/5\n" +
		"Depends-On: " + shared + "\n" +
		"Depends-On: https://review.example.org/c/org/lib/+/999\n" +
		"Change-Id: " + changeID(10) + "\n"
	me := add("org/app", "master", 10, "", rev(1001, "Add feature v1", 901), rev(1002, msg, 902))
	me.private, me.submittable = true, true
	me.votes = []fakeVote{{"Verified", 1, "ci"}, {"Code-Review", 2, "alice"}, {"Code-Review", 0, "bob"}, {"Workflow", 1, "alice"}}
	add("org/lib", "master", 20, "", rev(2001, "lib", 1))
	add("org/lib", "master", 21, "MERGED", rev(2101, "lib merged", 1))
	f.add(&fakeChange{project: "org/app", branch: "master", number: 30, changeID: shared, revs: []fakeRev{rev(3001, "shared master", 1)}})
	f.add(&fakeChange{project: "org/app", branch: "stable", number: 31, changeID: shared, revs: []fakeRev{rev(3101, "shared stable", 1)}})
	add("org/app", "master", 11, "", rev(1101, "child", 1002))
	add("org/app", "master", 12, "", rev(1201, "child of old patchset", 1001))
	add("org/app", "master", 13, "", rev(1301, "grandchild", 1101))
	add("org/other", "master", 40, "", rev(4001, "x\n\nDepends-On: https://review.example.org/c/org/app/+/10\n"))
	add("org/other", "master", 41, "", rev(4101, "x\n\nDepends-On: "+changeID(10)+"\n"))
	add("org/other", "master", 42, "", rev(4201, "x\n\nSee "+changeID(10)+" for why.\n"))
	add("org/other", "master", 43, "MERGED", rev(4301, "x\n\nDepends-On: "+changeID(10)+"\n"))
	add("org/other", "master", 44, "", rev(4401, "x\n\nDepends-On: https://review.example.org/c/org/app/+/100\n"))

	got, err := f.client(t).ChangeSnapshot(context.Background(), ck("org/app", 10))
	if err != nil {
		t.Fatal(err)
	}
	want := &pipeline.Change{
		Project: "org/app", Branch: "master", Number: 10, Patchset: 2, Ref: "refs/changes/10/10/2", Commit: sha(1002),
		ChangeID: changeID(10), Subject: "Add feature", Owner: "alice", URL: "https://review.example.org/c/org/app/+/10",
		Status: pipeline.StatusNew, Private: true,
		Approvals: []pipeline.Approval{{Label: "Code-Review", Value: 2, By: "alice"}, {Label: "Verified", Value: 1, By: "ci"}, {Label: "Workflow", Value: 1, By: "alice"}},
		Needs: []pipeline.Need{
			{Change: ck("org/app", 9), Patchset: 2},
			{Change: ck("org/lib", 20)},
			{Change: ck("org/lib", 21), Merged: true},
			{Change: ck("org/app", 30)},
		},
		NeededBy: []pipeline.ChangeKey{ck("org/app", 11), ck("org/other", 41), ck("org/other", 40)},
		Unresolved: []string{
			"https://other.example.com/c/x/+/5 (another Gerrit)",
			"https://review.example.org/c/org/lib/+/999 (no such change)",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot\n got %+v\nwant %+v", got, want)
	}
	// The Detail behind it.
	d, err := f.client(t).Detail(context.Background(), ck("org/app", 10))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Submittable || d.Message != msg || !slices.Equal(d.Parents, []string{sha(902)}) {
		t.Errorf("detail: submittable %v, parents %v, message %q", d.Submittable, d.Parents, d.Message)
	}
}

func TestLegacyChangeIDDependsOn(t *testing.T) {
	f := newRESTFake(t)
	s, u, only := changeID(5000), changeID(5001), changeID(5002)
	f.add(&fakeChange{project: "org/lib", branch: "master", number: 50, changeID: s, revs: []fakeRev{rev(5001, "lib master", 1)}})
	f.add(&fakeChange{project: "org/lib", branch: "stable", number: 51, changeID: s, revs: []fakeRev{rev(5101, "lib stable", 1)}})
	f.add(&fakeChange{project: "org/lib", branch: "stable", number: 52, changeID: only, revs: []fakeRev{rev(5201, "only", 1)}})
	dependent := func(project, branch string, n int, dep string) {
		f.add(&fakeChange{project: project, branch: branch, number: n, changeID: changeID(n),
			revs: []fakeRev{rev(n*100+1, "dep\n\nDepends-On: "+dep+"\n", 1)}})
	}
	dependent("org/app", "feature", 60, s)
	dependent("org/app", "master", 61, s)
	dependent("org/lib", "stable", 62, s)
	dependent("org/app", "master", 63, only)
	dependent("org/app", "master", 64, u)
	c := f.client(t)
	for _, tc := range []struct {
		key        pipeline.ChangeKey
		needs      []pipeline.Need
		unresolved []string
		neededBy   []pipeline.ChangeKey
	}{
		{key: ck("org/app", 60), unresolved: []string{s + " (ambiguous: 2 changes on other branches)"}},
		{key: ck("org/app", 61), needs: []pipeline.Need{{Change: ck("org/lib", 50)}}},
		{key: ck("org/lib", 62), needs: []pipeline.Need{{Change: ck("org/lib", 51)}}},
		{key: ck("org/app", 63), needs: []pipeline.Need{{Change: ck("org/lib", 52)}}},
		{key: ck("org/app", 64), unresolved: []string{u + " (no such change)"}},
		{key: ck("org/lib", 50), neededBy: []pipeline.ChangeKey{ck("org/app", 61)}},
		{key: ck("org/lib", 51), neededBy: []pipeline.ChangeKey{ck("org/lib", 62)}},
		{key: ck("org/lib", 52), neededBy: []pipeline.ChangeKey{ck("org/app", 63)}},
	} {
		got, err := c.ChangeSnapshot(context.Background(), tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Needs, tc.needs) || !slices.Equal(got.Unresolved, tc.unresolved) || !slices.Equal(got.NeededBy, tc.neededBy) {
			t.Errorf("%v: needs %v unresolved %q neededBy %v; want %v %q %v",
				tc.key, got.Needs, got.Unresolved, got.NeededBy, tc.needs, tc.unresolved, tc.neededBy)
		}
	}
}

func TestPickByChangeID(t *testing.T) {
	ci := func(project, branch string, n int) gogerrit.ChangeInfo {
		return gogerrit.ChangeInfo{Project: project, Branch: branch, Number: n}
	}
	self := ck("a", 1)
	for _, tc := range []struct {
		name  string
		cands []gogerrit.ChangeInfo
		want  []int
	}{
		{"none", nil, nil},
		{"only self", []gogerrit.ChangeInfo{ci("a", "master", 1)}, nil},
		{"same project and branch wins", []gogerrit.ChangeInfo{ci("b", "master", 2), ci("a", "master", 3), ci("a", "stable", 4)}, []int{3}},
		{"same branch, every project (Zuul v2 cross-repo)", []gogerrit.ChangeInfo{ci("b", "master", 2), ci("c", "refs/heads/master", 5), ci("a", "stable", 4)}, []int{2, 5}},
		{"single elsewhere", []gogerrit.ChangeInfo{ci("b", "stable", 2), ci("a", "master", 1)}, []int{2}},
		{"ambiguous elsewhere", []gogerrit.ChangeInfo{ci("b", "stable", 2), ci("b", "dev", 3)}, nil},
	} {
		var got []int
		for _, c := range pickByChangeID(tc.cands, "a", "master", self) {
			got = append(got, c.Number)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParentFoundByCommitWithoutRelatedEndpoint(t *testing.T) {
	f := newRESTFake(t)
	f.noRelated = true
	f.add(&fakeChange{project: "p", branch: "master", number: 9, changeID: changeID(9), revs: []fakeRev{rev(901, "a", 1), rev(902, "b", 1)}})
	f.add(&fakeChange{project: "p", branch: "master", number: 10, changeID: changeID(10), revs: []fakeRev{rev(1001, "c", 901)}})
	got, err := f.client(t).ChangeSnapshot(context.Background(), ck("p", 10))
	if err != nil {
		t.Fatal(err)
	}
	if want := []pipeline.Need{{Change: ck("p", 9), Patchset: 1}}; !reflect.DeepEqual(got.Needs, want) {
		t.Errorf("needs %v, want %v", got.Needs, want)
	}
	if !slices.ContainsFunc(f.requestLog(), func(r string) bool {
		return strings.Contains(r, "commit%3A"+sha(901)) || strings.Contains(r, "commit:"+sha(901))
	}) {
		t.Errorf("no commit: query in %q", f.requestLog())
	}
}

func TestMergedParentIsNoNeedAndClosedChangesAreNotResolved(t *testing.T) {
	f := newRESTFake(t)
	f.add(&fakeChange{project: "p", branch: "master", number: 9, status: "MERGED", changeID: changeID(9), revs: []fakeRev{rev(901, "a", 1)}})
	f.add(&fakeChange{project: "p", branch: "master", number: 10, changeID: changeID(10), revs: []fakeRev{rev(1001, "c", 901)}})
	f.add(&fakeChange{project: "p", branch: "master", number: 11, status: "ABANDONED", changeID: changeID(11),
		revs: []fakeRev{rev(1101, "x\n\nDepends-On: 10\n", 1001)}})
	c := f.client(t)
	got, err := c.ChangeSnapshot(context.Background(), ck("p", 10))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Needs) != 0 || len(got.NeededBy) != 0 {
		t.Errorf("needs %v neededBy %v, want none", got.Needs, got.NeededBy)
	}
	before := len(f.requestLog())
	closed, err := c.ChangeSnapshot(context.Background(), ck("p", 11))
	if err != nil {
		t.Fatal(err)
	}
	if closed.Status != pipeline.StatusAbandoned || closed.Needs != nil || len(f.requestLog())-before != 1 {
		t.Errorf("closed change: %+v after %d requests", closed, len(f.requestLog())-before)
	}
}

func TestRelated(t *testing.T) {
	f := newRESTFake(t)
	f.add(&fakeChange{project: "p", branch: "master", number: 9, changeID: changeID(9), revs: []fakeRev{rev(901, "a", 1), rev(902, "b", 1)}})
	f.add(&fakeChange{project: "p", branch: "master", number: 10, changeID: changeID(10), revs: []fakeRev{rev(1001, "c", 901)}})
	f.add(&fakeChange{project: "p", branch: "master", number: 11, changeID: changeID(11), revs: []fakeRev{rev(1101, "d", 1001)}})
	got, err := f.client(t).Related(context.Background(), ck("p", 10), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []RelatedChange{
		{Change: ck("p", 11), ChangeID: changeID(11), Patchset: 1, CurrentPatchset: 1, Commit: sha(1101), Parents: []string{sha(1001)}, Status: pipeline.StatusNew},
		{Change: ck("p", 9), ChangeID: changeID(9), Patchset: 1, CurrentPatchset: 2, Commit: sha(901), Parents: []string{sha(1)}, Status: pipeline.StatusNew},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("related\n got %+v\nwant %+v", got, want)
	}
}
