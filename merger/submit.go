package merger

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// SubmitType is a project's submit type, spelled as in Gerrit's project
// config and REST API.
type SubmitType string

// The submit types the merger mimics.
const (
	MergeIfNecessary  SubmitType = "MERGE_IF_NECESSARY"
	MergeAlways       SubmitType = "MERGE_ALWAYS"
	FastForwardOnly   SubmitType = "FAST_FORWARD_ONLY"
	RebaseIfNecessary SubmitType = "REBASE_IF_NECESSARY"
	RebaseAlways      SubmitType = "REBASE_ALWAYS"
	CherryPick        SubmitType = "CHERRY_PICK"
)

// Policy is how Gerrit submits to a project.
type Policy struct {
	// Type is the submit type; empty means MERGE_IF_NECESSARY, Gerrit's
	// default. The caller resolves INHERIT.
	Type SubmitType
	// NoContentMerge is Gerrit's "Allow content merges" turned off: a file
	// changed on both sides is a conflict even when the edits do not
	// overlap.
	NoContentMerge bool
}

func (p Policy) submitType() (SubmitType, error) {
	switch p.Type {
	case "":
		return MergeIfNecessary, nil
	case MergeIfNecessary, MergeAlways, FastForwardOnly, RebaseIfNecessary, RebaseAlways, CherryPick:
		return p.Type, nil
	}
	return "", fmt.Errorf("unknown submit type %q", p.Type)
}

// emptyTree is the id of the empty tree (SHA-1 repositories).
const emptyTree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

// seakeeperIdent commits what the merger writes; its date is set per
// commit. The throwaway commits used as rebase bases keep the zero date.
var seakeeperIdent = ident{name: "Seakeeper", email: "seakeeper@invalid", date: "0 +0000"}

// committerFor is the committer of a speculative commit made for change c:
// Seakeeper (as Gerrit commits as itself), dated like c's committer so the
// result depends on nothing but the inputs. Being committed by someone
// else, a rebased commit differs from the change commit even when its
// parent is the tip (REBASE_ALWAYS, CHERRY_PICK), as Gerrit's does.
func committerFor(c *commit) ident {
	id := seakeeperIdent
	id.date = c.committer.date
	return id
}

// stepper replays changes on one project+branch of a mirror.
type stepper struct {
	m   *Merger
	r   *repo
	pol Policy
	typ SubmitType
	// trees caches the tree of commits it made or looked at.
	trees map[string]string
}

// apply moves tip by one change the way Gerrit's submit type would. It
// returns the new tip, or a conflict.
func (s *stepper) apply(ctx context.Context, tip string, spec pipeline.Spec, c *commit) (string, *pipeline.Conflict, error) {
	if spec.Number == 0 || tip == "" {
		// A ref update is its own state; a branch that does not exist
		// yet starts at the change.
		return c.id, nil, nil
	}
	if s.trees != nil {
		s.trees[c.id] = c.tree
	}
	typ := s.typ
	if len(c.parents) > 1 && (typ == RebaseIfNecessary || typ == RebaseAlways || typ == CherryPick) {
		typ = MergeIfNecessary // Gerrit merges merge commits rather than rebasing them
	}
	conflict := func(msg string, files ...string) (string, *pipeline.Conflict, error) {
		return "", &pipeline.Conflict{Change: spec.Key(), Files: files, Message: msg}, nil
	}
	switch typ {
	case CherryPick, RebaseAlways:
		if len(c.parents) == 0 {
			return conflict("cannot rebase or cherry-pick a root commit onto " + spec.Branch)
		}
		return s.pick(ctx, tip, spec, c)
	case RebaseIfNecessary:
		if len(c.parents) == 0 {
			return conflict("cannot rebase a root commit onto " + spec.Branch)
		}
		if c.parents[0] == tip {
			return c.id, nil, nil
		}
	}
	base, err := s.mergeBase(ctx, tip, c.id)
	if err != nil {
		return "", nil, err
	}
	switch {
	case base == c.id:
		return tip, nil, nil // already part of the branch
	case base == tip && typ != MergeAlways:
		return c.id, nil, nil // fast-forward
	}
	switch typ {
	case FastForwardOnly:
		return conflict(fmt.Sprintf("project policy requires a fast-forward: %s is not based on the tip of %s (%s)", short(c.id), spec.Branch, short(tip)))
	case RebaseIfNecessary:
		return s.pick(ctx, tip, spec, c)
	}
	tree, cf, err := s.mergeTree(ctx, tip, c.id, base, spec)
	if cf != nil || err != nil {
		return "", cf, err
	}
	msg := fmt.Sprintf("Merge \"%s\"\n\nSpeculative merge of %s by Seakeeper.\n", c.subject(), spec)
	id, err := s.commitTree(ctx, tree, []string{tip, c.id}, c.committer, committerFor(c), msg)
	return id, nil, err
}

// pick replays c onto tip: the three-way merge of c's parent (base), tip
// (ours) and c (theirs), committed on tip with c's author and message. git 2.39's merge-tree has no --merge-base, so the base is forced
// by merging c with a throwaway commit that has tip's tree and c's parent as
// its only parent: their one merge base is then c's parent.
func (s *stepper) pick(ctx context.Context, tip string, spec pipeline.Spec, c *commit) (string, *pipeline.Conflict, error) {
	parent := c.parents[0]
	tree := c.tree
	if parent != tip {
		ours, err := s.commitTree(ctx, tip+"^{tree}", []string{parent}, seakeeperIdent, seakeeperIdent, "seakeeper: rebase base\n")
		if err != nil {
			return "", nil, err
		}
		var cf *pipeline.Conflict
		tree, cf, err = s.mergeTree(ctx, ours, c.id, parent, spec)
		if cf != nil || err != nil {
			return "", cf, err
		}
	}
	if s.typ == CherryPick {
		// Gerrit marks the change merged without a commit when the pick
		// would be empty.
		tipTree, err := s.treeOf(ctx, tip)
		if err != nil || tipTree == tree {
			return tip, nil, err
		}
	}
	id, err := s.commitTree(ctx, tree, []string{tip}, c.author, committerFor(c), c.message)
	return id, nil, err
}

func (s *stepper) treeOf(ctx context.Context, id string) (string, error) {
	if t, ok := s.trees[id]; ok {
		return t, nil
	}
	out, err := s.m.git.run(ctx, s.r.dir, "rev-parse", "--verify", id+"^{tree}")
	if err != nil {
		return "", err
	}
	return firstLine(out), nil
}

// mergeBase returns the best common ancestor of a and b, or "" when they
// have none.
func (s *stepper) mergeBase(ctx context.Context, a, b string) (string, error) {
	out, err := s.m.git.run(ctx, s.r.dir, "merge-base", a, b)
	if exitCode(err) == 1 && len(out) == 0 {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return firstLine(out), nil
}

// mergeTree merges ours and theirs without a worktree. base is their merge
// base, used only to enforce NoContentMerge.
func (s *stepper) mergeTree(ctx context.Context, ours, theirs, base string, spec pipeline.Spec) (string, *pipeline.Conflict, error) {
	out, err := s.m.git.run(ctx, s.r.dir, "merge-tree", "--write-tree", "--name-only", "-z", "--allow-unrelated-histories", ours, theirs)
	code := exitCode(err)
	if err != nil && code != 1 {
		return "", nil, err
	}
	tree, files, msgs := parseMergeTree(out)
	if tree == "" {
		return "", nil, fmt.Errorf("git merge-tree %s %s: no tree in output", ours, theirs)
	}
	if code == 1 {
		msg := strings.Join(msgs, "\n")
		if msg == "" {
			msg = "merge conflict"
		}
		return "", &pipeline.Conflict{Change: spec.Key(), Files: files, Message: msg}, nil
	}
	if s.pol.NoContentMerge {
		if base == "" {
			base = emptyTree // unrelated histories
		}
		files, err := s.bothChanged(ctx, base, ours, theirs)
		if err != nil {
			return "", nil, err
		}
		if len(files) > 0 {
			return "", &pipeline.Conflict{Change: spec.Key(), Files: files,
				Message: "content merges are not allowed in this project and these files were changed on both sides"}, nil
		}
	}
	return tree, nil, nil
}

// parseMergeTree reads `merge-tree --write-tree --name-only -z` output:
// the tree, NUL, conflicted paths each NUL-terminated, NUL, then messages
// as <count> NUL <paths…> NUL <type> NUL <text> NUL. Only conflict
// messages are kept.
func parseMergeTree(out []byte) (tree string, files, msgs []string) {
	tok := strings.Split(string(out), "\x00")
	if len(tok) == 0 {
		return "", nil, nil
	}
	tree = strings.TrimSpace(tok[0])
	i := 1
	seen := map[string]bool{}
	for ; i < len(tok) && tok[i] != ""; i++ {
		if !seen[tok[i]] {
			seen[tok[i]] = true
			files = append(files, tok[i])
		}
	}
	i++
	for i < len(tok) {
		var n int
		if _, err := fmt.Sscan(tok[i], &n); err != nil {
			break
		}
		i += 1 + n
		if i+1 >= len(tok) {
			break
		}
		typ, text := tok[i], strings.TrimSpace(tok[i+1])
		i += 2
		if strings.HasPrefix(text, "CONFLICT") || strings.HasPrefix(typ, "CONFLICT") {
			msgs = append(msgs, text)
		}
	}
	return tree, files, msgs
}

// bothChanged lists the paths that base→ours and base→theirs both change,
// to different results.
func (s *stepper) bothChanged(ctx context.Context, base, ours, theirs string) ([]string, error) {
	a, err := s.changed(ctx, base, ours)
	if err != nil {
		return nil, err
	}
	b, err := s.changed(ctx, base, theirs)
	if err != nil {
		return nil, err
	}
	var out []string
	for p, ida := range a {
		if idb, ok := b[p]; ok && idb != ida {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// changed maps each path that differs between two commits to its new
// mode and object id.
func (s *stepper) changed(ctx context.Context, from, to string) (map[string]string, error) {
	out, err := s.m.git.run(ctx, s.r.dir, "diff-tree", "-r", "-z", "--no-renames", from, to)
	if err != nil {
		return nil, err
	}
	res := map[string]string{}
	tok := bytes.Split(out, []byte{0})
	for i := 0; i+1 < len(tok); i += 2 {
		// ":<old mode> <new mode> <old id> <new id> <status>" NUL <path> NUL
		f := strings.Fields(string(tok[i]))
		if len(f) < 5 {
			break
		}
		res[string(tok[i+1])] = f[1] + " " + f[3]
	}
	return res, nil
}

// commitTree writes a commit without touching any ref.
func (s *stepper) commitTree(ctx context.Context, tree string, parents []string, author, committer ident, msg string) (string, error) {
	args := []string{"commit-tree", tree}
	for _, p := range parents {
		args = append(args, "-p", p)
	}
	out, err := s.m.git.exec(ctx, opts{dir: s.r.dir, stdin: []byte(msg), env: identEnv(author, committer)}, args...)
	if err != nil {
		return "", err
	}
	id := firstLine(out)
	if s.trees != nil && isHex(tree) {
		s.trees[id] = tree
	}
	return id, nil
}

func short(id string) string {
	if len(id) > 10 {
		return id[:10]
	}
	return id
}
