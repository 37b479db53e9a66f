package merger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// git runs the git CLI: no shell, a context timeout on every command, and a
// clean environment (HOME is an empty directory of the state dir, no system
// or global configuration, no terminal prompts), so that nothing of the host
// user's configuration (credential helpers, hooks, url rewrites) takes part.
type git struct {
	bin     string
	home    string
	timeout time.Duration
	// user and passwordFile give HTTP Basic credentials for fetches.
	user, passwordFile string
}

// opts are the less common knobs of one git invocation.
type opts struct {
	// dir is the bare repository: git runs in it with GIT_DIR pointing at
	// it, so a broken mirror is an error rather than a walk up to some
	// enclosing repository. Empty for clone, which runs in cwd.
	dir   string
	cwd   string
	stdin []byte
	env   []string // extra NAME=value pairs (commit identities)
	// auth adds the HTTP credentials (clone and fetch only).
	auth bool
	// gc leaves automatic garbage collection enabled (housekeeping only).
	gc bool
}

// gitError is a git command that ran and failed.
type gitError struct {
	args   []string
	code   int
	stderr string
}

func (e *gitError) Error() string {
	msg := strings.TrimSpace(e.stderr)
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	return fmt.Sprintf("git %s: exit status %d: %s", strings.Join(e.args, " "), e.code, msg)
}

// exitCode returns the exit status of a failed git command, or -1 when the
// error is not one (timeout, git not runnable).
func exitCode(err error) int {
	var ge *gitError
	if errors.As(err, &ge) {
		return ge.code
	}
	return -1
}

func (g *git) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	return g.exec(ctx, opts{dir: dir}, args...)
}

func (g *git) exec(ctx context.Context, o opts, args ...string) ([]byte, error) {
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	env, err := g.environ(o)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Dir = o.cwd
	if o.dir != "" {
		cmd.Dir = o.dir
		env = append(env, "GIT_DIR="+o.dir)
	}
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	if o.stdin != nil {
		cmd.Stdin = bytes.NewReader(o.stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		return stdout.Bytes(), fmt.Errorf("git %s: %w (%s)", strings.Join(args, " "), ctx.Err(), strings.TrimSpace(stderr.String()))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.Bytes(), &gitError{args: args, code: ee.ExitCode(), stderr: stderr.String()}
	}
	return stdout.Bytes(), fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
}

// environ is the whole environment of a git process. Configuration is
// passed with GIT_CONFIG_COUNT/KEY/VALUE, which, unlike `-c`, keeps values
// (the Authorization header) off the command line that ps shows.
func (g *git) environ(o opts) ([]string, error) {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{
		"PATH=" + path,
		"HOME=" + g.home,
		"XDG_CONFIG_HOME=" + g.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"LC_ALL=C",
		"LANG=C",
		"TZ=UTC",
	}
	cfg := baseConfig()
	if !o.gc {
		cfg = append(cfg, [2]string{"gc.auto", "0"})
	}
	if o.auth && g.user != "" && g.passwordFile != "" {
		pw, err := os.ReadFile(g.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("reading the HTTP password: %w", err)
		}
		token := base64.StdEncoding.EncodeToString([]byte(g.user + ":" + strings.TrimRight(string(pw), "\r\n")))
		cfg = append(cfg, [2]string{"http.extraHeader", "Authorization: Basic " + token})
	}
	env = append(env, configEnv(cfg)...)
	return append(env, o.env...), nil
}

// baseConfig applies to every git process the merger starts.
func baseConfig() [][2]string {
	return [][2]string{
		{"maintenance.auto", "false"},
		{"core.hooksPath", "/dev/null"},
		{"credential.helper", ""},
		{"protocol.version", "2"},
		{"fetch.writeCommitGraph", "false"},
		{"init.defaultBranch", "master"},
		{"core.logAllRefUpdates", "false"},
	}
}

func configEnv(cfg [][2]string) []string {
	env := []string{"GIT_CONFIG_COUNT=" + strconv.Itoa(len(cfg))}
	for i, kv := range cfg {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	return env
}

// object is one answer of `git cat-file --batch`.
type object struct {
	name    string // what was asked for
	id      string // empty when missing
	typ     string
	content []byte
}

// catFile looks up names (object ids or ref names) in one `git cat-file
// --batch` run. Missing objects come back with an empty id.
func (g *git) catFile(ctx context.Context, dir string, names []string) ([]object, error) {
	if len(names) == 0 {
		return nil, nil
	}
	in := strings.Join(names, "\n") + "\n"
	out, err := g.exec(ctx, opts{dir: dir, stdin: []byte(in)}, "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(bytes.NewReader(out))
	objs := make([]object, 0, len(names))
	for _, name := range names {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("git cat-file: short output for %q", name)
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			// "<name> missing" or "<name> ambiguous"
			objs = append(objs, object{name: name})
			continue
		}
		size, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("git cat-file: bad header %q", line)
		}
		content := make([]byte, size+1)
		if _, err := io.ReadFull(r, content); err != nil {
			return nil, fmt.Errorf("git cat-file: short object %s", f[0])
		}
		objs = append(objs, object{name: name, id: f[0], typ: f[1], content: content[:size]})
	}
	return objs, nil
}

// commit is the part of a commit object the merger uses.
type commit struct {
	id        string
	tree      string
	parents   []string
	author    ident
	committer ident
	message   string
}

// ident is an author or committer line: name, email and git's raw date
// ("<unix seconds> <+hhmm>").
type ident struct{ name, email, date string }

func parseCommit(id string, raw []byte) (*commit, error) {
	c := &commit{id: id}
	head, msg, _ := bytes.Cut(raw, []byte("\n\n"))
	c.message = string(msg)
	for _, line := range strings.Split(string(head), "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "tree":
			c.tree = val
		case "parent":
			c.parents = append(c.parents, val)
		case "author":
			c.author = parseIdent(val)
		case "committer":
			c.committer = parseIdent(val)
		}
	}
	if c.tree == "" {
		return nil, fmt.Errorf("commit %s has no tree", id)
	}
	return c, nil
}

func parseIdent(s string) ident {
	lt, gt := strings.IndexByte(s, '<'), strings.LastIndexByte(s, '>')
	if lt < 0 || gt < lt {
		return ident{name: s}
	}
	return ident{name: strings.TrimSpace(s[:lt]), email: s[lt+1 : gt], date: strings.TrimSpace(s[gt+1:])}
}

// subject is the first line of the commit message.
func (c *commit) subject() string {
	s, _, _ := strings.Cut(strings.TrimLeft(c.message, "\n"), "\n")
	return s
}

// identEnv sets the author and committer of commit-tree.
func identEnv(author, committer ident) []string {
	if author.name == "" {
		author.name = "unknown"
	}
	if committer.name == "" {
		committer.name = "unknown"
	}
	date := func(d string) string {
		if d == "" {
			return "@0 +0000"
		}
		return "@" + d
	}
	return []string{
		"GIT_AUTHOR_NAME=" + author.name, "GIT_AUTHOR_EMAIL=" + author.email, "GIT_AUTHOR_DATE=" + date(author.date),
		"GIT_COMMITTER_NAME=" + committer.name, "GIT_COMMITTER_EMAIL=" + committer.email, "GIT_COMMITTER_DATE=" + date(committer.date),
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(s)
}
