package argo

import (
	"container/heap"
	"context"
	"sync"
)

// slots caps the workflows running in the cluster. Whoever does not get a
// slot waits here, in the daemon, ordered by priority (higher first: gate
// before check) and then by arrival.
type slots struct {
	mu      sync.Mutex
	max     int
	used    int
	seq     uint64
	waiting waitHeap
}

type waiter struct {
	prio  int32
	seq   uint64
	index int           // in the heap; -1 once granted or withdrawn
	ready chan struct{} // closed when granted
}

func newSlots(max int) *slots { return &slots{max: max} }

// acquire waits for a slot. It returns nil with the slot held, or the
// context's error without one.
func (s *slots) acquire(ctx context.Context, prio int32) error {
	s.mu.Lock()
	if s.used < s.max && len(s.waiting) == 0 {
		s.used++
		s.mu.Unlock()
		return nil
	}
	s.seq++
	w := &waiter{prio: prio, seq: s.seq, ready: make(chan struct{})}
	heap.Push(&s.waiting, w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.index < 0 { // granted meanwhile: hand it on
			s.used--
			s.grant()
		} else {
			heap.Remove(&s.waiting, w.index)
		}
		return ctx.Err()
	}
}

// take holds a slot without waiting, even past the cap: for workflows that
// already run (adopted ones).
func (s *slots) take() {
	s.mu.Lock()
	s.used++
	s.mu.Unlock()
}

// release frees a slot and hands it to the first waiter.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used > 0 {
		s.used--
	}
	s.grant()
}

func (s *slots) grant() {
	for s.used < s.max && len(s.waiting) > 0 {
		w := heap.Pop(&s.waiting).(*waiter)
		s.used++
		close(w.ready)
	}
}

// counts returns the slots in use and the number of waiters.
func (s *slots) counts() (used, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used, len(s.waiting)
}

type waitHeap []*waiter

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio > h[j].prio
	}
	return h[i].seq < h[j].seq
}
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waitHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*h = old[:len(old)-1]
	return w
}
