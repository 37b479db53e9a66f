package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// narrator prints the demo: the story's steps, and, as they happen, the
// daemon's comments and the merges Gerrit reports. It is safe for
// concurrent use; event is called by the fake Gerrit with its lock held,
// so it only prints and records.
type narrator struct {
	out io.Writer

	mu     sync.Mutex
	merged []string // "demo/lib 1", in the order Gerrit merged them
}

// daemonUser is the daemon's Gerrit account (gerrittest's default and the
// built-in configuration's).
const daemonUser = scheduler.DefaultGerritUser

func (n *narrator) printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.out, format, args...)
}

// act starts a part of the story.
func (n *narrator) act(title string) { n.printf("\n%s\n", title) }

// say tells one line of it.
func (n *narrator) say(format string, args ...any) {
	n.printf("   %s\n", strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "\n   "))
}

// event shows what the daemon does in Gerrit: its comments (with their
// votes) and the merges.
func (n *narrator) event(ev *gerrit.Event) {
	if ev.Change == nil {
		return
	}
	c := fmt.Sprintf("%s %d", ev.Change.Project, ev.Change.Number)
	switch ev.Type {
	case gerrit.TypeCommentAdded:
		if ev.Author == nil || ev.Author.Username != daemonUser {
			return
		}
		votes, text := splitComment(ev.Comment)
		ps := 0
		if ev.PatchSet != nil {
			ps = int(ev.PatchSet.Number)
		}
		line := fmt.Sprintf("   %s on %s patchset %d:", daemonUser, c, ps)
		if votes != "" {
			line += " " + votes
		}
		n.printf("%s %s\n", line, text)
	case gerrit.TypeChangeMerged:
		n.mu.Lock()
		defer n.mu.Unlock()
		n.merged = append(n.merged, c)
		fmt.Fprintf(n.out, "   MERGED %s %q as %.10s\n", c, ev.Change.Subject, ev.NewRev)
	}
}

// splitComment returns the votes of a Gerrit comment ("Patch Set 1:
// Verified+1") and the first line of its message.
func splitComment(comment string) (votes, text string) {
	head, body, _ := strings.Cut(comment, "\n\n")
	if _, v, ok := strings.Cut(head, ":"); ok {
		votes = strings.TrimSpace(v)
	}
	text, _, _ = strings.Cut(strings.TrimSpace(body), "\n")
	return votes, text
}

func (n *narrator) mergedOrder() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.merged)
}

// intro says what runs where.
func (n *narrator) intro(d *demo, addrs scheduler.Addrs) {
	g := d.gerrit
	var b strings.Builder
	fmt.Fprintf(&b, "Seakeeper demo: a fake Gerrit, a local stand-in for Argo and the daemon, on this machine.\n\n")
	if addrs.Public != "" {
		fmt.Fprintf(&b, "  Status page       http://%s/\n", addrs.Public)
	} else {
		fmt.Fprintf(&b, "  Status page       none yet: this build does not serve it\n")
	}
	fmt.Fprintf(&b, "  Gerrit (fake)     %s/changes/?q=projects:demo/&o=LABELS&pp=1  (REST only, no web UI)\n", g.URL())
	fmt.Fprintf(&b, "  Gerrit git        git clone %s/demo/lib   (and demo/app)\n", g.URL())
	fmt.Fprintf(&b, "  Gerrit events     ssh -i %s -o UserKnownHostsFile=%s -p %s %s@127.0.0.1 gerrit stream-events\n",
		filepath.Join(d.dir, "ssh", "id_ed25519"), filepath.Join(d.dir, "ssh", "known_hosts"), port(g.SSHAddr()), daemonUser)
	fmt.Fprintf(&b, "  Git endpoint      http://%s/git/<project>, refs/seakeeper/<buildset>  (speculative states)\n", addrs.Internal)
	fmt.Fprintf(&b, "  Workflows         %s  (argolocal runs them as local processes)\n", filepath.Join(d.dir, "workflows"))
	fmt.Fprintf(&b, "  Daemon state      %s\n", filepath.Join(d.dir, "state", "seakeeper.db"))
	fmt.Fprintf(&b, "  Daemon log        %s\n", d.logf.Name())
	fmt.Fprintf(&b, "\nPipelines: check (on upload and \"recheck\"), gate (on Code-Review +2; shared queue \"demo\"), post (after merges).\n")
	n.printf("%s", b.String())
}

// summary tells how the story ended.
func (n *narrator) summary(s *storySummary, took time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSummary (the story took %v)\n", took.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "  merged, in order: %s\n", strings.Join(s.Merged, ", "))
	fmt.Fprintf(&b, "  failed in the gate: %s (Verified -2, then -1 on recheck); merged with patchset %d\n", s.Failed, s.FixedIn)
	projects := make([]string, 0, len(s.Tips))
	for p := range s.Tips {
		projects = append(projects, p)
	}
	sort.Strings(projects)
	for _, p := range projects {
		fmt.Fprintf(&b, "  %s master is %.10s\n", p, s.Tips[p])
	}
	n.printf("%s", b.String())
}

// port returns the port of host:port.
func port(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}
