package gerrittest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// zeroRev is what ref-updated says for a created or deleted ref.
const zeroRev = "0000000000000000000000000000000000000000"

// emptyTree is git's empty tree (SHA-1).
const emptyTree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

// repo is a bare repository operated on with plumbing commands only.
type repo struct {
	dir string
	ctx context.Context
}

// gitEnv keeps the user's and the system's configuration, and any GIT_*
// variable of the caller (tests may run inside a git hook), out of the way.
func gitEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	env = append(env, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	return append(env, extra...)
}

// gitError is a failed git command with its stderr.
type gitError struct {
	args   []string
	code   int
	stderr string
}

func (e *gitError) Error() string {
	return fmt.Sprintf("git %s: exit %d: %s", strings.Join(e.args, " "), e.code, strings.TrimSpace(e.stderr))
}

// exec runs git in the repository and returns its stdout.
func (r *repo) exec(stdin []byte, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(r.ctx, "git", args...)
	cmd.Dir = r.dir
	cmd.Env = gitEnv(env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.Bytes(), &gitError{args: args, code: ee.ExitCode(), stderr: stderr.String()}
	}
	if err != nil {
		return nil, fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// run is exec returning trimmed stdout as a string.
func (r *repo) run(args ...string) (string, error) {
	out, err := r.exec(nil, nil, args...)
	return strings.TrimSpace(string(out)), err
}

// exitCode returns the exit code of a gitError, -1 for other errors.
func exitCode(err error) int {
	var ge *gitError
	if errors.As(err, &ge) {
		return ge.code
	}
	return -1
}

// initBare creates a bare repository whose HEAD names branch.
func initBare(ctx context.Context, dir, branch string) (*repo, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	r := &repo{dir: filepath.Dir(dir), ctx: ctx}
	if _, err := r.run("init", "--bare", "-q", dir); err != nil {
		return nil, err
	}
	r.dir = dir
	for _, kv := range [][2]string{
		{"http.receivepack", "false"},
		{"uploadpack.allowReachableSHA1InWant", "true"},
		{"core.logAllRefUpdates", "false"},
	} {
		if _, err := r.run("config", kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if _, err := r.run("symbolic-ref", "HEAD", "refs/heads/"+branch); err != nil {
		return nil, err
	}
	return r, nil
}

// ident is a git author or committer.
type ident struct {
	name, email string
	when        time.Time
}

func (i ident) String() string {
	return fmt.Sprintf("%s <%s> %d +0000", i.name, i.email, i.when.Unix())
}

// writeTree returns the tree of base (a commit or tree; "" for empty)
// with files written and del removed, using a temporary index.
func (r *repo) writeTree(base string, files map[string]string, del []string) (string, error) {
	tmp, err := os.MkdirTemp("", "gerrittest-index-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	idx := []string{"GIT_INDEX_FILE=" + filepath.Join(tmp, "index")}
	if base == "" {
		_, err = r.exec(nil, idx, "read-tree", "--empty")
	} else {
		_, err = r.exec(nil, idx, "read-tree", base)
	}
	if err != nil {
		return "", err
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var info strings.Builder
	for _, p := range paths {
		sha, err := r.exec([]byte(files[p]), nil, "hash-object", "-w", "--stdin")
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&info, "100644 %s\t%s\n", strings.TrimSpace(string(sha)), p)
	}
	for _, p := range del {
		fmt.Fprintf(&info, "0 %s\t%s\n", zeroRev, p)
	}
	if info.Len() > 0 {
		if _, err := r.exec([]byte(info.String()), idx, "update-index", "--index-info"); err != nil {
			return "", err
		}
	}
	out, err := r.exec(nil, idx, "write-tree")
	return strings.TrimSpace(string(out)), err
}

// commitTree creates a commit object.
func (r *repo) commitTree(tree string, parents []string, msg string, author, committer ident) (string, error) {
	args := []string{"commit-tree", tree}
	for _, p := range parents {
		args = append(args, "-p", p)
	}
	env := []string{
		"GIT_AUTHOR_NAME=" + author.name, "GIT_AUTHOR_EMAIL=" + author.email,
		"GIT_AUTHOR_DATE=" + fmt.Sprintf("@%d +0000", author.when.Unix()),
		"GIT_COMMITTER_NAME=" + committer.name, "GIT_COMMITTER_EMAIL=" + committer.email,
		"GIT_COMMITTER_DATE=" + fmt.Sprintf("@%d +0000", committer.when.Unix()),
	}
	out, err := r.exec([]byte(msg), env, args...)
	return strings.TrimSpace(string(out)), err
}

// updateRef moves ref to newRev if it still points at oldRev ("" skips
// the check, zeroRev requires the ref not to exist).
func (r *repo) updateRef(ref, newRev, oldRev string) error {
	args := []string{"update-ref", ref, newRev}
	if oldRev != "" {
		args = append(args, oldRev)
	}
	_, err := r.run(args...)
	return err
}

// resolve returns the commit rev names, "" if there is none.
func (r *repo) resolve(rev string) (string, error) {
	out, err := r.run("rev-parse", "--verify", "-q", rev+"^{commit}")
	if exitCode(err) == 1 {
		return "", nil
	}
	return out, err
}

// treeOf returns the tree of a commit.
func (r *repo) treeOf(commit string) (string, error) {
	return r.run("rev-parse", "--verify", commit+"^{tree}")
}

// isAncestor reports whether a is an ancestor of (or equal to) b.
func (r *repo) isAncestor(a, b string) (bool, error) {
	_, err := r.run("merge-base", "--is-ancestor", a, b)
	if err == nil {
		return true, nil
	}
	if exitCode(err) == 1 {
		return false, nil
	}
	return false, err
}

// mergeTrees merges two commits without a worktree. clean is false on a
// conflict.
func (r *repo) mergeTrees(ours, theirs string) (tree string, clean bool, err error) {
	out, err := r.run("merge-tree", "--write-tree", "--no-messages", "--allow-unrelated-histories", ours, theirs)
	tree, _, _ = strings.Cut(out, "\n")
	if err == nil {
		return tree, true, nil
	}
	if exitCode(err) == 1 {
		return tree, false, nil
	}
	return "", false, err
}

// pickTree applies commit's change (against its first parent) onto the
// tree of onto: a cherry-pick without a worktree. merge-tree of git 2.39
// has no --merge-base, so the three trees are wrapped in throwaway commits
// whose only merge base is the old parent's tree.
func (r *repo) pickTree(commit, onto string) (tree string, clean bool, err error) {
	c, err := r.readCommit(commit)
	if err != nil {
		return "", false, err
	}
	if len(c.parents) == 0 {
		return "", false, errors.New("root commit")
	}
	baseTree, err := r.treeOf(c.parents[0])
	if err != nil {
		return "", false, err
	}
	ontoTree, err := r.treeOf(onto)
	if err != nil {
		return "", false, err
	}
	fixed := ident{name: "gerrittest", email: "gerrittest@localhost", when: time.Unix(0, 0)}
	base, err := r.commitTree(baseTree, nil, "base\n", fixed, fixed)
	if err != nil {
		return "", false, err
	}
	ours, err := r.commitTree(ontoTree, []string{base}, "ours\n", fixed, fixed)
	if err != nil {
		return "", false, err
	}
	theirs, err := r.commitTree(c.tree, []string{base}, "theirs\n", fixed, fixed)
	if err != nil {
		return "", false, err
	}
	return r.mergeTrees(ours, theirs)
}

// commitData is a parsed commit object.
type commitData struct {
	sha       string
	tree      string
	parents   []string
	author    ident
	committer ident
	message   string
}

func parseIdent(s string) ident {
	var id ident
	lt, gt := strings.Index(s, "<"), strings.LastIndex(s, ">")
	if lt < 0 || gt < lt {
		return id
	}
	id.name = strings.TrimSpace(s[:lt])
	id.email = s[lt+1 : gt]
	if f := strings.Fields(s[gt+1:]); len(f) > 0 {
		if sec, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			id.when = time.Unix(sec, 0).UTC()
		}
	}
	return id
}

// readCommit parses a commit object.
func (r *repo) readCommit(rev string) (*commitData, error) {
	out, err := r.exec(nil, nil, "cat-file", "commit", rev)
	if err != nil {
		return nil, err
	}
	sha, err := r.run("rev-parse", "--verify", rev+"^{commit}")
	if err != nil {
		return nil, err
	}
	c := &commitData{sha: sha}
	head, msg, _ := strings.Cut(string(out), "\n\n")
	c.message = msg
	for _, line := range strings.Split(head, "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "tree":
			c.tree = v
		case "parent":
			c.parents = append(c.parents, v)
		case "author":
			c.author = parseIdent(v)
		case "committer":
			c.committer = parseIdent(v)
		}
	}
	return c, nil
}

// readFile returns a file of a commit; found is false if it has none.
func (r *repo) readFile(rev, path string) (data []byte, found bool, err error) {
	typ, err := r.run("cat-file", "-t", rev+":"+path)
	if err != nil || typ != "blob" {
		return nil, false, nil
	}
	data, err = r.exec(nil, nil, "cat-file", "blob", rev+":"+path)
	return data, err == nil, err
}

// diffStats compares a commit with its first parent (the empty tree for a
// root commit): totals and per-file statistics.
func (r *repo) diffStats(commit string) (ins, del int, files map[string]fileStat, err error) {
	c, err := r.readCommit(commit)
	if err != nil {
		return 0, 0, nil, err
	}
	base := emptyTree
	if len(c.parents) > 0 {
		base = c.parents[0]
	}
	files = map[string]fileStat{}
	status, err := r.run("diff-tree", "-r", "--no-renames", "--name-status", base, commit)
	if err != nil {
		return 0, 0, nil, err
	}
	for _, line := range strings.Split(status, "\n") {
		if st, path, ok := strings.Cut(line, "\t"); ok {
			files[path] = fileStat{status: st}
		}
	}
	num, err := r.run("diff-tree", "-r", "--no-renames", "--numstat", base, commit)
	if err != nil {
		return 0, 0, nil, err
	}
	for _, line := range strings.Split(num, "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			continue
		}
		a, _ := strconv.Atoi(f[0]) // "-" for binary files reads as 0
		d, _ := strconv.Atoi(f[1])
		fs := files[f[2]]
		fs.ins, fs.del = a, d
		files[f[2]] = fs
		ins += a
		del += d
	}
	return ins, del, files, nil
}
