package scheduler

import (
	"slices"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// BenchmarkApprovalToBuild measures the scheduler's overhead from a
// stream event to the build submitted (inbox write, REST re-read, turn,
// commit, prepare, its result's turn and commit, build dispatch), with
// fakes, no settle delay and a store without fsync. It reports p50 and
// p99 of that latency next to ns/op. Each build then succeeds, so the gate
// queue drains behind the benchmark.
func BenchmarkApprovalToBuild(b *testing.B) {
	e := newEnv(b)
	e.realTime = true
	e.start()
	defer e.stop()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		n := i + 1
		e.gerrit.put(openChange(n, 1, true))
		begin := time.Now()
		e.send(approval(n, 1))
		for {
			subs, _ := e.builds.submitted()
			if len(subs) >= n {
				break
			}
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Since(begin))
		// Let it merge so that the gate window never fills.
		e.builds.finish(pipeline.PhaseSucceeded, time.Now())
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
