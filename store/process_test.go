package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// helperCmd re-executes the test binary as a helper process.
func helperCmd(t *testing.T, role, path string) (*exec.Cmd, io.WriteCloser, *bufio.Scanner, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+role, helperPathEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, stdin, bufio.NewScanner(stdout), stderr
}

func TestOpenInUseByAnotherProcess(t *testing.T) {
	path := tempPath(t)
	cmd, stdin, out, stderr := helperCmd(t, "hold", path)
	if !out.Scan() || out.Text() != "ready" {
		_ = cmd.Wait()
		t.Fatalf("helper did not get ready: %q, stderr: %s", out.Text(), stderr)
	}

	const timeout = 300 * time.Millisecond
	type result struct {
		s       *Store
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		s, err := Open(path, Options{Timeout: timeout})
		done <- result{s, err, time.Since(start)}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Open of a file held by another process did not return within 30s (timeout 300ms)")
	}
	if r.err == nil {
		_ = r.s.Close()
		t.Fatal("Open of a file held by another process succeeded")
	}
	if !errors.Is(r.err, ErrInUse) {
		t.Fatalf("err = %v, want ErrInUse", r.err)
	}
	want := fmt.Sprintf("store %s is already in use by another process (waited 300ms)", path)
	if r.err.Error() != want {
		t.Errorf("message = %q\nwant      %q", r.err, want)
	}
	// bbolt polls the lock every 50ms and gives up one poll early.
	if r.elapsed < timeout/2 {
		t.Errorf("gave up after %v, long before the timeout %v", r.elapsed, timeout)
	}
	t.Logf("ErrInUse after %v", r.elapsed)

	// Once the other process is gone, the file opens.
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v, stderr: %s", err, stderr)
	}
	closeT(t, openT(t, path, Options{}))
}

const (
	crashItems = 100
	crashKeep  = 5
)

// crashTurn is turn i of the crash helper: it consumes event i, emits
// actions a(i-1) (already in the outbox: a no-op) and a(i), confirms a(i-2)
// and finishes item it-i.
func crashTurn(i int64, consumed uint64) Turn {
	return Turn{
		State:     testState(crashItems, i),
		Consumed:  []uint64{consumed},
		Emitted:   []pipeline.Action{act(fmt.Sprintf("a%d", i-1)), act(fmt.Sprintf("a%d", i))},
		Confirmed: []string{fmt.Sprintf("a%d", i-2)},
		Finished: []HistoryEntry{{Pipeline: "gate", Project: "p", Item: fmt.Sprintf("it-%d", i), Outcome: "success",
			EnqueuedAt: t0, FinishedAt: t0.Add(time.Duration(i) * time.Second)}},
	}
}

// helperCrash runs turns until killed. Each turn appends events so the
// inbox holds events up to 2i (one transaction), then commits turn i and
// prints "committed i". It resumes from whatever the store holds.
func helperCrash(path string) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(3)
	}
	s, err := Open(path, Options{HistoryPerProject: crashKeep})
	if err != nil {
		fail("%v", err)
	}
	st, err := s.Load()
	if err != nil {
		fail("%v", err)
	}
	i := st.Seq
	last := int(i) // highest event index appended so far
	inbox, err := s.Inbox(0)
	if err != nil {
		fail("%v", err)
	}
	if len(inbox) > 0 {
		if last, err = eventIndex(inbox[len(inbox)-1].Event); err != nil {
			fail("%v", err)
		}
	}
	for i < 1_000_000 {
		i++
		var evs []pipeline.Event
		for last < 2*int(i) {
			last++
			evs = append(evs, comment(last))
		}
		if _, err := s.AppendInbox(evs...); err != nil {
			fail("%v", err)
		}
		head, err := s.Inbox(1)
		if err != nil || len(head) != 1 {
			fail("inbox head: %v %v", head, err)
		}
		if n, err := eventIndex(head[0].Event); err != nil || n != int(i) {
			fail("turn %d: inbox head is event %d (%v)", i, n, err)
		}
		if err := s.Commit(crashTurn(i, head[0].Seq)); err != nil {
			fail("%v", err)
		}
		fmt.Printf("committed %d\n", i)
	}
	os.Exit(0)
}

// TestCrashRecovery kills a process committing turns with SIGKILL at random
// moments, twelve times in a row on the same file. After each kill the file
// opens (it passes the full check), and the state is exactly that of the
// last turn reported committed or of the one after it (committed, not yet
// reported), with the inbox, outbox and history of that same turn.
func TestCrashRecovery(t *testing.T) {
	path := tempPath(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var prev int64
	for round := 0; round < 12; round++ {
		cmd, _, out, stderr := helperCmd(t, "crash", path)
		target := 1 + rng.IntN(15)
		reported, seen := prev, 0
		for seen < target && out.Scan() {
			if _, err := fmt.Sscanf(out.Text(), "committed %d", &reported); err != nil {
				t.Fatalf("helper said %q", out.Text())
			}
			seen++
		}
		// A turn takes a few ms: land anywhere in the next one.
		time.Sleep(time.Duration(rng.IntN(6000)) * time.Microsecond)
		_ = cmd.Process.Kill() // SIGKILL
		// Count the lines it wrote before it died.
		for out.Scan() {
			if _, err := fmt.Sscanf(out.Text(), "committed %d", &reported); err != nil {
				t.Fatalf("helper said %q", out.Text())
			}
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: helper ended with %v, not SIGKILL; stderr: %s", round, err, stderr)
		}
		got, pending := verifyCrashStore(t, path, reported)
		t.Logf("round %d: killed after %d reported turns (last %d); store holds turn %d, %d events pending", round, seen, reported, got, pending)
		if got < prev {
			t.Fatalf("round %d: store went back from turn %d to %d", round, prev, got)
		}
		prev = got
	}
}

// verifyCrashStore opens the store and checks it holds a turn n with
// reported <= n <= reported+1, consistently; it returns n and the length of
// the inbox (n, or n+2 when killed between appending and committing).
func verifyCrashStore(t *testing.T, path string, reported int64) (int64, int) {
	t.Helper()
	s := openT(t, path, Options{HistoryPerProject: crashKeep})
	defer closeT(t, s)
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	n := st.Seq
	if n < reported || n > reported+1 {
		t.Fatalf("store holds turn %d, but turn %d was reported committed", n, reported)
	}
	if got, want := mustJSON(t, st), mustJSON(t, testState(crashItems, n)); got != want {
		t.Fatalf("state of turn %d differs from what turn %d committed", n, n)
	}

	inbox, err := s.Inbox(0)
	if err != nil {
		t.Fatal(err)
	}
	for k, e := range inbox {
		idx, err := eventIndex(e.Event)
		if err != nil {
			t.Fatal(err)
		}
		if idx != int(n)+1+k {
			t.Fatalf("turn %d: inbox entry %d is event %d, want %d", n, k, idx, int(n)+1+k)
		}
	}
	if m := int(n) + len(inbox); m != 2*int(n) && m != 2*int(n)+2 {
		t.Fatalf("turn %d: inbox holds events up to %d, want %d or %d", n, m, 2*n, 2*n+2)
	}

	out, err := s.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	if n > 0 {
		want = []string{fmt.Sprintf("a%d", n-1), fmt.Sprintf("a%d", n)}
	}
	if got := actionIDs(out); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("turn %d: outbox %v, want %v", n, got, want)
	}

	hist, err := s.History("gate", "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, h := range hist {
		items = append(items, h.Item)
	}
	var wantItems []string
	for i := n; i >= 1 && i > n-crashKeep; i-- {
		wantItems = append(wantItems, fmt.Sprintf("it-%d", i))
	}
	if strings.Join(items, ",") != strings.Join(wantItems, ",") {
		t.Fatalf("turn %d: history %v, want %v", n, items, wantItems)
	}
	return n, len(inbox)
}
