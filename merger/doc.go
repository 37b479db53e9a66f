// Package merger is Seakeeper's speculative git state: a cache of bare
// mirrors of Gerrit's repositories, the commits Gerrit would produce if the
// changes of a queue item (and of the items ahead of it) were submitted in
// order, and a read-only smart-HTTP endpoint from which workflows fetch them.
//
// Prepare takes an ordered change list (pipeline.Spec) and, per project and
// branch, replays Gerrit's submit type on top of the branch tip (or on top of
// the item-ahead's result): fast-forward, merge commit with parents
// [tip, change], or the change commit rebased or cherry-picked onto the tip.
// Everything is done with git plumbing in the bare mirror (merge-tree
// --write-tree, commit-tree, update-ref): no worktree, no checkout. The
// result is written to refs/seakeeper/<buildset> in each project touched;
// see Prepare for the naming when a buildset touches several branches of one
// project, and for how speculative commits differ from Gerrit's own.
//
// Handler serves the mirrors with `git http-backend` (upload-pack only);
// Release, Keep and Maintain delete refs of finished buildsets and run
// `git gc --auto`; ConfigFile reads files of refs/meta/config.
//
// What this package must not do: decide anything about gating (which changes
// are tested together, what a conflict means for the queue: that is the
// pipeline's job), talk to Gerrit other than through git fetch, submit or
// push anything to Gerrit, run git through a shell, let git read the user's
// or the system's configuration, or put a password on a command line.
package merger
