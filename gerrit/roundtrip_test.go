package gerrit_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// TestRoundTripOverSockets is the whole conversation Seakeeper has with
// Gerrit, every leg on a real socket: a change is created, patchset-created
// arrives over SSH, a vote is posted over REST and read back by a REST query,
// the submit merges in the fake's git repository, and change-merged and
// ref-updated arrive over SSH.
func TestRoundTripOverSockets(t *testing.T) {
	srv, client := newGerrittest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, srv.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	hostKeys, err := gerrit.KnownHosts(kh)
	if err != nil {
		t.Fatal(err)
	}
	items := gerrit.StreamConfig{
		Addr: srv.SSHAddr(), User: srv.User(), Signer: srv.ClientSigner(), HostKeyCallback: hostKeys,
		EventTypes: []string{"patchset-created", "comment-added", "change-merged", "ref-updated"},
	}.Run(ctx)
	next := func(want string) *gerrit.Event {
		t.Helper()
		for {
			select {
			case it, ok := <-items:
				if !ok {
					t.Fatalf("stream closed while waiting for %s", want)
				}
				if it.Err != nil {
					t.Fatalf("stream error while waiting for %s: %v", want, it.Err)
				}
				if it.Event != nil && it.Event.Type == want {
					return it.Event
				}
				if it.Event != nil {
					t.Fatalf("got %s while waiting for %s", it.Event.Type, want)
				}
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", want)
			}
		}
	}
	for it := range items { // the stream is live once it says so
		if it.Connected() {
			break
		}
		if it.Err != nil {
			t.Fatalf("connecting: %v", it.Err)
		}
	}

	if err := srv.CreateProject("org/app", gerrittest.MergeIfNecessary); err != nil {
		t.Fatal(err)
	}
	before, err := srv.Branch("org/app", "master")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := srv.CreateChange(gerrittest.ChangeSpec{Project: "org/app", Files: map[string]string{"app.go": "package app\n"}})
	if err != nil {
		t.Fatal(err)
	}
	created := next("patchset-created")
	te, ok := gerrit.Normalize(created)
	if !ok || te.Change == nil || te.Change.Number != ch.Number || te.Change.Project != "org/app" {
		t.Fatalf("patchset-created normalised to %+v (ok=%v)", te, ok)
	}
	key := pipeline.ChangeKey{Project: "org/app", Number: ch.Number}

	// Code-Review by a human (Go API), Verified by Seakeeper over REST.
	if err := srv.Approve("org/app", ch.Number, "Code-Review", 2, "alice"); err != nil {
		t.Fatal(err)
	}
	if ev := next("comment-added"); ev.Author == nil || ev.Author.Username != "alice" {
		t.Fatalf("comment-added from %+v", ev.Author)
	}
	if err := client.Review(ctx, key, te.Change.Commit, gerrit.ReviewInput{
		Labels: map[string]int{"Verified": 2}, Message: "Build succeeded.", Tag: gerrit.ReportTag("gate"),
	}); err != nil {
		t.Fatal(err)
	}
	voted := next("comment-added")
	if voted.Author == nil || voted.Author.Username != srv.User() {
		t.Fatalf("our vote came from %+v", voted.Author)
	}
	snap, err := client.ChangeSnapshot(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !snapshotHasVote(snap, "Verified", 2, srv.User()) || !snapshotHasVote(snap, "Code-Review", 2, "alice") {
		t.Fatalf("votes read back over REST: %+v", snap.Approvals)
	}
	open, err := client.QueryOpen(ctx, "project:org/app label:Verified=2")
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Number != ch.Number {
		t.Fatalf("query for Verified=2 found %+v", open)
	}

	if err := client.Submit(ctx, key, snap.Commit); err != nil {
		t.Fatal(err)
	}
	after, err := srv.Branch("org/app", "master")
	if err != nil {
		t.Fatal(err)
	}
	if after != snap.Commit {
		t.Fatalf("master moved %s -> %s, want the change's commit %s (fast-forward)", before, after, snap.Commit)
	}
	updated := next("ref-updated")
	if updated.RefUpdate == nil || updated.RefUpdate.RefName != "refs/heads/master" || updated.RefUpdate.NewRev != after {
		t.Fatalf("ref-updated: %+v", updated.RefUpdate)
	}
	merged := next("change-merged")
	if te, ok := gerrit.Normalize(merged); !ok || te.Change.Status != pipeline.StatusMerged || te.Change.Number != ch.Number {
		t.Fatalf("change-merged normalised to %+v", te)
	}
}

func snapshotHasVote(c *pipeline.Change, label string, value int, by string) bool {
	for _, a := range c.Approvals {
		if a.Label == label && a.Value == value && a.By == by {
			return true
		}
	}
	return false
}
