//go:build linux

package main

// Chaos tests of the daemon (DESIGN §6, tier 3): `seakeeper serve`'s
// wiring as a real OS process, killed with SIGKILL at random moments and
// restarted on the same state directory, and its Gerrit stream severed
// while approvals arrive. Gerrit is gerrittest in this process, Kubernetes
// the real kube-apiserver tier, and argolocal runs the Workflows here.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Kill-9 scenario parameters.
const (
	chaosChanges      = 20
	chaosMaxKillDelay = 3 * time.Second
	chaosSettleLimit  = 5 * time.Minute
)

// TestChaosKill9 runs CHAOS_RUNS (default 50) gate scenarios. In each,
// 20 changes spread over 2 or 3 projects of one shared queue, 2 or 3 of
// which fail their tests, are approved (Code-Review +2) in a burst; the
// daemon is SIGKILLed 1 to 3 times at random moments (a third of the runs
// in the middle of the burst, so that approvals arrive while it is down)
// and restarted on the same state directory until every change is merged
// or reported failed. Then checkInvariants: failing changes open with a
// failure report, the others merged (or open with a failure report: the
// daemon may fail what it could not test, never merge what it did not;
// those are logged, and CHAOS_STRICT=1 fails them), nothing merged twice,
// nothing merged without a passing build of exactly the tree it merged
// as.
//
// The randomness of run i comes from the seed CHAOS_SEED+i; CHAOS_SEED
// defaults to a fresh value that the test logs. A failed run prints its
// seed (replay with CHAOS_SEED=<seed> CHAOS_RUNS=1; the kill moments are
// the same, what the daemon was doing then may differ), the daemon's log
// and gerrittest's event history; CHAOS_LOG_DIR=<dir> keeps every run's
// daemon log as <dir>/<seed>.log. Soak mode: CHAOS_RUNS=500.
func TestChaosKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: runs the daemon as a process against a real kube-apiserver, for minutes")
	}
	runs := chaosEnvInt(t, "CHAOS_RUNS", 50)
	base := chaosSeed(t)
	t.Logf("chaos: %d runs from CHAOS_SEED=%d", runs, base)
	strict := os.Getenv("CHAOS_STRICT") != ""
	w := newChaosWorld(t)
	start := time.Now()
	var failedGood []string
	for i := range runs {
		if d, ok := t.Deadline(); ok && time.Until(d) < chaosSettleLimit {
			t.Fatalf("chaos: run %d of %d would not fit before the test binary's deadline; raise go test -timeout", i, runs)
		}
		seed := base + uint64(i)
		if !t.Run(fmt.Sprintf("run%03d", i), func(t *testing.T) {
			for _, n := range chaosKill9Run(t, w, seed, strict) {
				failedGood = append(failedGood, fmt.Sprintf("seed %d: %s", seed, n))
			}
		}) {
			t.Fatalf("run %d failed; replay with CHAOS_SEED=%d CHAOS_RUNS=1", i, seed)
		}
	}
	t.Logf("chaos: %d runs in %v", runs, time.Since(start).Round(time.Second))
	if len(failedGood) > 0 {
		t.Logf("chaos: %d changes that pass their tests were reported failed:\n%s",
			len(failedGood), strings.Join(failedGood, "\n"))
	}
}

func chaosKill9Run(t *testing.T, w *chaosWorld, seed uint64, strict bool) (notes []string) {
	s := w.newChaosScenario(t, seed, 0)
	failing := s.rng.Perm(chaosChanges)[:2+s.rng.IntN(2)]
	s.addChanges(t, chaosChanges, failing)
	kills := 1 + s.rng.IntN(3)
	burstKill := -1
	if s.rng.IntN(3) == 0 {
		burstKill = s.rng.IntN(chaosChanges)
	}
	t.Logf("seed %d: projects %q, changes %v, %d kills, kill during the burst before approval %d",
		seed, s.projects, s.changes, kills, burstKill)

	s.d.start()
	s.d.waitFor(time.Minute, "stream-events session of the daemon", func() bool { return w.gerrit.SSH().Sessions() > 0 })
	killed := 0
	for i := range s.changes {
		if i == burstKill {
			s.d.kill()
			killed++
		}
		s.approve(t, i)
	}
	if burstKill >= 0 {
		s.d.start()
	}
	begin := time.Now()
	next := begin.Add(chaosKillDelay(s.rng))
	for !s.settled() {
		if err := s.d.alive(); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if killed < kills && now.After(next) {
			s.d.kill()
			killed++
			s.d.start()
			next = now.Add(chaosKillDelay(s.rng))
		}
		if now.Sub(begin) > chaosSettleLimit {
			t.Fatalf("the scenario did not settle within %v (%d kills)", chaosSettleLimit, killed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.d.kill()
	t.Logf("settled %v after the burst; %d kills; daemon CPU (with its git children) %v",
		time.Since(begin).Round(time.Millisecond), killed, s.d.cpu.Round(time.Millisecond))
	probs, notes := s.checkInvariants(t, strict)
	if len(probs) > 0 {
		t.Fatalf("%d invariants broken:\n%s", len(probs), strings.Join(probs, "\n"))
	}
	for _, n := range notes {
		t.Logf("note: %s; the daemon log has why (CHAOS_STRICT=1 makes this a failure)", n)
	}
	return notes
}

// chaosKillDelay draws how long the daemon lives before the next SIGKILL.
func chaosKillDelay(rng *rand.Rand) time.Duration {
	return time.Duration(rng.Int64N(int64(chaosMaxKillDelay)))
}

// TestChaosStreamSever: approvals made while the daemon's stream-events
// connection is stalled and then severed never reach the daemon; the
// resync after it reconnects enqueues them, and they merge. A control
// change approved before, with the stream up, merges through its event.
func TestChaosStreamSever(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: runs the daemon as a process against a real kube-apiserver")
	}
	seed := chaosSeed(t)
	t.Logf("CHAOS_SEED=%d", seed)
	w := newChaosWorld(t)
	s := w.newChaosScenario(t, seed, 1)
	s.addChanges(t, 4, nil)
	ssh := w.gerrit.SSH()

	s.d.start()
	s.d.waitFor(time.Minute, "the daemon's stream and its first resync", func() bool {
		return ssh.Sessions() > 0 && len(s.logRecords("resync")) > 0
	})
	s.approve(t, 0)
	s.d.waitFor(2*time.Minute, "the control change to merge", func() bool {
		o, err := s.outcome(s.changes[0])
		return err == nil && o == "merged"
	})

	// Stall: the session queues events but writes none. The approvals
	// are then held in its queue, which Sever throws away with the
	// connection.
	ssh.Stall(true)
	for i := 1; i < len(s.changes); i++ {
		s.approve(t, i)
	}
	if held, want := ssh.Pending(), len(s.changes)-1; held < want {
		ssh.Stall(false)
		t.Fatalf("the stalled stream holds %d events, want at least the %d approvals", held, want)
	}
	ssh.Sever()
	ssh.Stall(false)

	s.d.waitFor(3*time.Minute, "every change to merge", s.settled)
	s.d.kill()
	if probs, _ := s.checkInvariants(t, true); len(probs) > 0 {
		t.Fatalf("%d invariants broken:\n%s", len(probs), strings.Join(probs, "\n"))
	}

	var resynced []string
	for _, r := range s.logRecords("resync: enqueueing a change whose approval event was missed") {
		resynced = append(resynced, fmt.Sprint(r["change"]))
	}
	for i, c := range s.changes {
		key := fmt.Sprintf("%s~%d,1", c.project, c.number)
		if got, want := slices.Contains(resynced, key), i > 0; got != want {
			t.Errorf("%s enqueued by a resync: %v, want %v (resync enqueued %q)", key, got, want, resynced)
		}
	}
	connected := 0
	for _, r := range s.logRecords("gerrit stream asks for a resync") {
		if r["reason"] == "connected" {
			connected++
		}
	}
	if connected < 2 {
		t.Errorf("the stream connected %d times, want at least 2 (start and after the sever)", connected)
	}
}

// logRecords returns the daemon's JSON log records with message msg.
func (s *chaosScenario) logRecords(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(s.d.logText(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// chaosSeed returns CHAOS_SEED, or a fresh seed.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	v := os.Getenv("CHAOS_SEED")
	if v == "" {
		return rand.Uint64() >> 1
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("CHAOS_SEED=%q: want a non-negative integer: %v", v, err)
	}
	return seed
}

// chaosEnvInt returns the positive integer in the environment variable
// name, or def when it is unset.
func chaosEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
