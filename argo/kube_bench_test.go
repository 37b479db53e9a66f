package argo_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/typed/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/informers/externalversions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// BenchmarkSubmitObserveRealAPI is BenchmarkSubmitObserve against the real
// kube-apiserver and etcd of kubetest. One op submits 1,000 buildsets
// through the adapter (the site's cap of 100 running workflows; the
// adapter's ServiceAccount holding only adapterVerbs, in a fresh
// namespace) while goroutines play the controller: an informer watches the
// namespace as the admin, and each Workflow created is marked Succeeded
// with an Update. It reports the throughput of the whole run and, as the
// fake benchmark does, the latency from just before the status write to
// the BuildResult received from Results (API server, watch, informer,
// handler and outbox). Run both with
//
//	go test ./argo -run '^$' -bench SubmitObserve -benchtime 1x -count 3
func BenchmarkSubmitObserveRealAPI(b *testing.B) {
	const n = 1000
	b.StopTimer() // not the cluster's start-up
	c := cluster(b)
	admin := wfClient(b, c.AdminConfig())
	var lat []time.Duration
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		project, ns := newProject(c, "bench")
		cfg := c.ProjectNamespace(b, ns, adapterVerbs())
		a := startAdapter(b, cfg, configs{project: "workflowTemplateRef: {name: ci}\n"}, func(o *argo.Options) {
			o.MaxWorkflows = 100
			o.Namespaces = []string{ns}
		})
		acts := make([]pipeline.Action, n)
		for j := range acts {
			acts[j] = gateAction(project, j+1, 1, fakeSHA(j), fakeSHA(j+1))
		}

		// The "controller". It uses an informer, not a bare Watch: the API
		// server may end a watch at any time, without an error event (it
		// did here, in the first run after the CRDs were installed), and
		// an informer watches again from where it was.
		wfs := admin.ArgoprojV1alpha1().Workflows(ns)
		ctx, stopCtl := context.WithCancel(context.Background())
		b.Cleanup(stopCtl)
		created := make(chan *wfv1.Workflow, n)
		f := externalversions.NewSharedInformerFactoryWithOptions(admin, 0, externalversions.WithNamespace(ns),
			externalversions.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = argo.LabelBuildSet }))
		inf := f.Argoproj().V1alpha1().Workflows().Informer()
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
			if wf, ok := obj.(*wfv1.Workflow); ok && wf.Status.Phase == "" {
				select {
				case created <- wf.DeepCopy():
				case <-ctx.Done():
				}
			}
		}}); err != nil {
			b.Fatal(err)
		}
		f.Start(ctx.Done())
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			b.Fatal("the controller's informer did not sync")
		}
		var mu sync.Mutex
		written := make(map[string]time.Time, n)
		var ctl sync.WaitGroup
		for range 8 {
			ctl.Go(func() {
				for {
					var wf *wfv1.Workflow
					select {
					case wf = <-created:
					case <-ctx.Done():
						return
					}
					for {
						now := metav1.Now()
						wf.Status.Phase, wf.Status.StartedAt, wf.Status.FinishedAt = wfv1.WorkflowSucceeded, now, now
						mu.Lock()
						written[wf.Annotations[argo.LabelBuildSet]] = time.Now()
						mu.Unlock()
						_, err := wfs.Update(ctx, wf, metav1.UpdateOptions{})
						if apierrors.IsConflict(err) {
							if wf, err = wfs.Get(ctx, wf.Name, metav1.GetOptions{}); err == nil {
								continue
							}
						}
						if err != nil && ctx.Err() == nil {
							b.Error(err)
						}
						break
					}
				}
			})
		}

		b.StartTimer()
		start := time.Now()
		for _, act := range acts {
			go func() {
				if err := a.Submit(a.ctx, act); err != nil {
					b.Error(err)
				}
			}()
		}
		seen, finished := 0, 0
		var got []pipeline.BuildResult
		var at []time.Time
		for finished < n {
			select {
			case <-a.res.notify:
			case <-time.After(waitLimit):
				b.Fatalf("%d of %d workflows finished; then nothing for %v; adapter %+v; workflows in %s by phase: %v",
					finished, n, waitLimit, a.Stats(), ns, phases(b, wfs))
			}
			rs, ts := a.res.since(seen)
			seen += len(rs)
			for k, r := range rs {
				switch r.Phase {
				case pipeline.PhasePending:
				case pipeline.PhaseSucceeded:
					finished++
					got, at = append(got, r), append(at, ts[k])
				default:
					b.Fatalf("unexpected result %+v", r)
				}
			}
		}
		total += time.Since(start)
		b.StopTimer()
		mu.Lock()
		for k, r := range got {
			lat = append(lat, at[k].Sub(written[r.BuildSet]))
		}
		mu.Unlock()
		stopCtl()
		ctl.Wait()
		a.Shutdown()
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "workflows/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// phases counts the Workflows of a namespace by phase, for a failure
// message.
func phases(tb testing.TB, wfs wfclient.WorkflowInterface) map[wfv1.WorkflowPhase]int {
	list, err := wfs.List(context.Background(), metav1.ListOptions{})
	if err != nil {
		tb.Error(err)
		return nil
	}
	out := map[wfv1.WorkflowPhase]int{}
	for _, wf := range list.Items {
		out[wf.Status.Phase]++
	}
	return out
}
