package scheduler

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// changeIn is openChange in project p.
func changeIn(p string, n int) pipeline.Change {
	c := openChange(n, 1, true)
	c.Project = p
	return c
}

// approvalIn is approval in project p.
func approvalIn(p string, n int) *gerrit.Event {
	ev := approval(n, 1)
	ev.Project, ev.Change.Project = gerrit.Project(p), gerrit.Project(p)
	return ev
}

// waitSubmits polls until the fake build adapter saw want buildsets.
func (e *env) waitSubmits(want int) {
	for {
		subs, _ := e.builds.submitted()
		if len(subs) >= want {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// BenchmarkRestartToReady measures a restart with 1,000 items in the store
// (50 gate queues of 20 active items, each with a running build): from
// opening the store to the first new approval's build submitted, which
// covers loading the state, adopting the 1,000 builds, re-dispatching the
// outbox, the start-up resync over the 1,000 open changes, and one turn.
// The store is copied afresh before each iteration (outside the timer).
func BenchmarkRestartToReady(b *testing.B) {
	const projects, perProject = 50, 20
	e := newEnv(b)
	e.realTime = true
	e.start()
	n := 0
	for p := range projects {
		for range perProject {
			n++
			proj := fmt.Sprintf("org/p%02d", p)
			e.gerrit.put(changeIn(proj, n))
			e.send(approvalIn(proj, n))
		}
	}
	e.waitSubmits(n)
	e.stop()
	seed := e.path + ".seed"
	copyFile(b, e.path, seed)
	items := 0
	for _, q := range mustLoad(b, e).Pipelines[0].Queues {
		items += len(q.Items)
	}
	if items != projects*perProject {
		b.Fatalf("the seeded store holds %d items, want %d", items, projects*perProject)
	}

	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		copyFile(b, seed, e.path)
		probe := projects*perProject + 1 + i
		e.gerrit.put(changeIn("org/probe", probe))
		// Every iteration starts from the same store, so the probe's
		// buildset ID repeats: count submits, not buildsets.
		before := e.totalSubmits()
		b.StartTimer()
		e.start()
		e.send(approvalIn("org/probe", probe))
		for e.totalSubmits() == before {
			time.Sleep(20 * time.Microsecond)
		}
		b.StopTimer()
		e.stop()
		e.gerrit.mu.Lock()
		delete(e.gerrit.changes, pipeline.ChangeKey{Project: "org/probe", Number: probe})
		e.gerrit.mu.Unlock()
		b.StartTimer()
	}
}

// totalSubmits counts every Submit call of the fake build adapter.
func (e *env) totalSubmits() int {
	subs, _ := e.builds.submitted()
	n := 0
	for _, c := range subs {
		n += c
	}
	return n
}

func mustLoad(b *testing.B, e *env) *pipeline.State {
	st := e.open()
	defer st.Close()
	s, err := st.Load()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkGateUnderTraffic measures the approval→build latency of a gate
// change while a generator sends unrelated stream events as fast as the
// loop takes them: patchset-created events of 200 other projects, which
// no pipeline of the test configuration acts on but each of which is
// stored, settled (no delay here) and re-read over (fake) REST like any
// other. "quiet" is the same without the generator; compare the two
// sub-benchmarks' p50/p99 side by side. "traffic" also reports the
// unrelated events per second the loop sustained meanwhile.
func BenchmarkGateUnderTraffic(b *testing.B) {
	for _, traffic := range []bool{false, true} {
		name := "quiet"
		if traffic {
			name = "traffic"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			e.realTime = true
			const others = 200
			for i := range others {
				c := changeIn(fmt.Sprintf("other/p%03d", i), 100000+i)
				c.Approvals = nil
				e.gerrit.put(c)
			}
			e.start()
			defer e.stop()
			var sent atomic.Int64
			stopGen := make(chan struct{})
			genDone := make(chan struct{})
			if traffic {
				go func() {
					defer close(genDone)
					for i := 0; ; i++ {
						p := i % others
						ev := &gerrit.Event{
							Type:    "patchset-created",
							Project: gerrit.Project(fmt.Sprintf("other/p%03d", p)),
							Change: &gerrit.Change{Project: gerrit.Project(fmt.Sprintf("other/p%03d", p)),
								Branch: "main", Number: gerrit.FlexInt(100000 + p), Status: "NEW"},
							PatchSet: &gerrit.PatchSet{Number: 1, Revision: commitOf(100000+p, 1), Ref: refOf(100000+p, 1)},
							Uploader: &gerrit.Account{Username: "bob"},
						}
						select {
						case e.stream <- gerrit.StreamItem{Event: ev}:
							sent.Add(1)
						case <-stopGen:
							return
						}
					}
				}()
			} else {
				close(genDone)
			}
			lat := make([]time.Duration, 0, b.N)
			begin := time.Now()
			b.ResetTimer()
			for i := range b.N {
				n := i + 1
				e.gerrit.put(openChange(n, 1, true))
				t0 := time.Now()
				e.send(approval(n, 1))
				e.waitSubmits(n)
				lat = append(lat, time.Since(t0))
				e.builds.finish(pipeline.PhaseSucceeded, time.Now())
			}
			b.StopTimer()
			elapsed := time.Since(begin)
			close(stopGen)
			<-genDone
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			if traffic {
				b.ReportMetric(float64(sent.Load())/elapsed.Seconds(), "unrelated-events/s")
			}
		})
	}
}
