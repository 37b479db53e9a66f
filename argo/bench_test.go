package argo

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// BenchmarkSubmitObserve submits 1,000 buildsets through the adapter over
// the fake clientset with the site's cap of 100 running workflows, plays
// the controller by marking each created Workflow Succeeded, and measures
// the throughput of the whole run and the latency from the status write to
// the BuildResult on Results (the informer, handler and outbox path).
func BenchmarkSubmitObserve(b *testing.B) {
	const n = 1000
	var lat []time.Duration
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b, func(o *Options) { o.MaxWorkflows = 100 })
		acts := make([]pipeline.Action, n)
		for j := range acts {
			acts[j] = build("gate", j+1, 1, 200)
		}
		written := make(map[string]time.Time, n)
		var mu sync.Mutex
		markDone := make(chan string, n)
		var ctl sync.WaitGroup
		for range 8 { // the "controller"
			ctl.Add(1)
			go func() {
				defer ctl.Done()
				for bs := range markDone {
					act := acts[bsIndex(bs)]
					wfs := e.cs.ArgoprojV1alpha1().Workflows(appNS)
					wf, err := wfs.Get(context.Background(), WorkflowName(act), metav1.GetOptions{})
					if err != nil {
						b.Error(err)
						continue
					}
					wf.Status.Phase = wfv1.WorkflowSucceeded
					mu.Lock()
					written[bs] = time.Now()
					mu.Unlock()
					if _, err := wfs.Update(context.Background(), wf, metav1.UpdateOptions{}); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		b.StartTimer()
		start := time.Now()
		for _, act := range acts {
			go func() {
				if err := e.a.Submit(context.Background(), act); err != nil {
					b.Error(err)
				}
			}()
		}
		for finished := 0; finished < n; {
			r := e.next()
			switch r.Phase {
			case pipeline.PhasePending:
				markDone <- r.BuildSet
			case pipeline.PhaseSucceeded:
				mu.Lock()
				lat = append(lat, time.Since(written[r.BuildSet]))
				mu.Unlock()
				finished++
			default:
				b.Fatalf("unexpected result %+v", r)
			}
		}
		total += time.Since(start)
		b.StopTimer()
		close(markDone)
		ctl.Wait()
		e.cancel()
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "workflows/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// bsIndex returns j from buildset "gate-<j+1>.0".
func bsIndex(bs string) int {
	n := 0
	for _, c := range bs[len("gate-"):] {
		if c == '.' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n - 1
}
