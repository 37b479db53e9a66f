package merger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// TestTreesMatchGerrittestSubmit prepares a queue of three changes against
// the fake Gerrit (fetching over its authenticated git HTTP), then submits
// them there one by one: after each submit the branch tip has the tree of
// the matching speculative state, and the same history shape.
func TestTreesMatchGerrittestSubmit(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			srv, err := gerrittest.New(gerrittest.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			const project = "org/proj"
			if err := srv.CreateProject(project, gerrittest.SubmitType(typ)); err != nil {
				t.Fatal(err)
			}
			tip0, err := srv.PushToBranch(project, "master", map[string]string{"a.txt": lines(10, nil), "b.txt": lines(10, nil)}, "base\n", "")
			if err != nil {
				t.Fatal(err)
			}
			create := func(spec gerrittest.ChangeSpec) *gerrittest.Change {
				t.Helper()
				spec.Project = project
				c, err := srv.CreateChange(spec)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			var queue []*gerrittest.Change
			queue = append(queue, create(gerrittest.ChangeSpec{Files: map[string]string{"a.txt": lines(10, map[int]string{1: "A"})}}))
			if typ == FastForwardOnly {
				queue = append(queue, create(gerrittest.ChangeSpec{ParentChange: queue[0].Number, Files: map[string]string{"b.txt": lines(10, map[int]string{2: "B"})}}))
			} else {
				// The branch moves on, and the next change was written
				// against the old tip: merges and rebases are needed.
				if _, err := srv.PushToBranch(project, "master", map[string]string{"x.txt": "x\n"}, "moved\n", ""); err != nil {
					t.Fatal(err)
				}
				queue = append(queue, create(gerrittest.ChangeSpec{Parent: tip0, Files: map[string]string{"b.txt": lines(10, map[int]string{2: "B"})}}))
			}
			queue = append(queue, create(gerrittest.ChangeSpec{ParentChange: queue[1].Number,
				Files: map[string]string{"a.txt": lines(10, map[int]string{9: "C"}), "c.txt": "c\n"}}))
			var specs []pipeline.Spec
			for _, c := range queue {
				ps := c.Current()
				specs = append(specs, pipeline.Spec{Project: project, Branch: "master", Number: c.Number, Patchset: ps.Number, Ref: ps.Ref, Commit: ps.Revision})
			}

			pwFile := filepath.Join(t.TempDir(), "pw")
			if err := os.WriteFile(pwFile, []byte(srv.Password()), 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := New(Config{
				Dir:          t.TempDir(),
				Source:       func(p string) string { return srv.URL() + "/a/" + p },
				User:         srv.User(),
				PasswordFile: pwFile,
				Policy:       func(context.Context, string) (Policy, error) { return Policy{Type: typ}, nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			var states []string
			base := ""
			for k := 1; k <= len(specs); k++ {
				bs := fmt.Sprintf("gt-%d.1", k)
				states = append(states, commitOf(t, mustPrepare(t, m, bs, specs[:k], base), project, "master"))
				base = bs
			}

			fake := filepath.Join(srv.Dir(), project+".git")
			fakeGit := func(args ...string) string {
				return runGit(t, fake, append(testEnv(t.TempDir()), "GIT_DIR="+fake), "", args...)
			}
			prev := ""
			for k, c := range queue {
				for _, label := range []string{"Code-Review", "Verified"} {
					if err := srv.Approve(project, c.Number, label, 2, "reviewer"); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := srv.Submit(project, c.Number, ""); err != nil {
					t.Fatalf("submit %d: %v", c.Number, err)
				}
				tip, err := srv.Branch(project, "master")
				if err != nil {
					t.Fatal(err)
				}
				ours := states[k]
				if got, want := mirrorGit(t, m, project, "rev-parse", ours+"^{tree}"), fakeGit("rev-parse", tip+"^{tree}"); got != want {
					t.Fatalf("after submitting change %d: speculative tree %s, gerrittest %s", k+1, got, want)
				}
				fakeParents := strings.Fields(fakeGit("rev-list", "--parents", "-n1", tip))[1:]
				ourParents := parentsOf(t, m, project, ours)
				change := specs[k].Commit
				if (tip == change) != (ours == change) || len(fakeParents) != len(ourParents) {
					t.Errorf("change %d: gerrittest tip %s parents %v; ours %s parents %v (change commit %s)", k+1, tip, fakeParents, ours, ourParents, change)
				}
				if k > 0 && len(ourParents) > 0 && ourParents[0] != prev && ours != change {
					t.Errorf("change %d: first parent %s, previous state %s", k+1, ourParents[0], prev)
				}
				prev = ours
			}
		})
	}
}
