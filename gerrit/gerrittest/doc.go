// Package gerrittest is a fake Gerrit for tests and the demo, in the
// spirit of net/http/httptest: real loopback sockets and real protocols,
// so that the REST client (go-gerrit), plain git and the whole daemon run
// against it unchanged.
//
// New starts one HTTP listener and one SSH server on 127.0.0.1:
//
//   - REST, as Gerrit documents it: the )]}' prefix (compact JSON, pretty
//     with pp=1, as Gerrit 3.4+), HTTP Basic on /a/...
//     (401 with a Basic challenge; anonymous GETs allowed, anonymous writes
//     403 "Authentication required"), routing on the escaped path
//     (mediawiki%2Fcore~12345), timestamps "2006-01-02 15:04:05.000000000"
//     in UTC, plain-text error bodies with Gerrit's wording. Endpoints:
//     GET /changes/?q=&o=&n=&S=, GET /changes/{id}[/detail],
//     GET .../revisions/{rev}/related, GET .../revisions/{rev}/commit,
//     POST .../revisions/{rev}/review, POST /changes/{id}/submit and
//     .../revisions/{rev}/submit, POST .../revisions/{rev}/test.submit_rule,
//     POST /changes/{id}/{abandon,restore,wip,ready,private},
//     DELETE /changes/{id}/private, DELETE
//     /changes/{id}/reviewers/{account}/votes/{label},
//     GET /projects/{p}, GET /projects/{p}/branches/{b},
//     GET /projects/{p}/branches/{b}/files/{f}/content (base64),
//     GET /accounts/{self|id|username}, GET /config/server/version.
//     Change ids: number, project~number, project~branch~Change-Id, or a
//     bare Change-Id. Options: CURRENT_REVISION, ALL_REVISIONS,
//     CURRENT_COMMIT, ALL_COMMITS, CURRENT_FILES, ALL_FILES, LABELS,
//     DETAILED_LABELS, DETAILED_ACCOUNTS, MESSAGES, SUBMITTABLE,
//     SUBMIT_REQUIREMENTS (submit_records). The query language subset is
//     described at parseQuery.
//   - git smart HTTP through `git http-backend` (net/http/cgi) over real
//     bare repositories in Options.Dir, at /<project> (anonymous) and
//     /a/<project> (authenticated). Patchsets are at refs/changes/NN/N/P.
//     Fetch only: pushes are refused with 403.
//   - stream-events over SSH (Bus, SSHServer), for Options.User with
//     ClientSigner.
//
// The Go API (CreateProject, CreateChange, NewPatchset, Approve, Comment,
// Review, DeleteVote, Abandon, Restore, SetWIP, SetPrivate, Submit,
// MergeOutside, PushToBranch, PutConfigFile, FailNext, SlowNext ...)
// changes the state as a user would, and every action publishes the event
// Gerrit would, in Gerrit's order, stamped by Options.Clock. It takes user
// names and creates their accounts on first use ("" is Options.User).
// The REST handlers and the Go API share one implementation, so a submit
// through either does the same thing. Events, Requests, Votes, Messages
// and SubmitRecord let tests see what happened.
//
// Submit rule: every label of the project is evaluated per its function
// (default labels Code-Review and Verified, -2..+2, MaxWithBlock: a +2 is
// needed and a -2 blocks). The first failing label, in project order, is
// reported as Gerrit does ("Change N: needs Verified", "blocked by
// Code-Review"). Votes are permitted per label and user (Grant); outside
// the range they are refused with 403 "Applying label ...: V is
// restricted".
//
// Submit types are performed with plumbing on the bare repository (no
// worktree): MERGE_IF_NECESSARY (fast-forward, else a merge commit with
// parents [tip, change]), MERGE_ALWAYS, FAST_FORWARD_ONLY, REBASE_IF_NECESSARY
// and REBASE_ALWAYS (the change's commit replayed onto the tip as a new
// patchset), CHERRY_PICK (likewise, with Reviewed-on/Reviewed-by/Tested-by
// footers, as REBASE_ALWAYS). Conflicts are found with `git merge-tree
// --write-tree` and answered 409 with Gerrit's text.
//
// Known differences from Gerrit: votes on an outdated patchset are
// recorded on it (they do not count for the current one); submitting a
// change never submits its open ancestors along (it is refused with
// "depends on change that was not submitted"); private changes are hidden
// from anonymous callers only; votes are not copied to new patchsets
// except minimum votes of CopyMinScore labels (and all of them to the
// patchset a rebase or cherry-pick submit creates); refs/changes/*
// updates publish no ref-updated; project.config on refs/meta/config is
// informational; GET .../files/{f}/content answers base64 text as Gerrit
// does, which go-gerrit's GetBranchContent cannot decode (read the body
// raw).
package gerrittest
