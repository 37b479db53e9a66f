package pipeline

// index is a pipeline's lookup tables. It is derived from the queues, never
// serialised, rebuilt on first use after a load and kept up to date by
// addItem, removeItem and setBuildSet, so that an event costs work in
// proportion to the queues it touches, not to all items.
type index struct {
	queues    map[string]*Queue
	items     map[string]*Item
	byChange  map[string][]*Item // Change.id() -> items, by Item.N
	byBuildSt map[string]*Item
}

func (p *PipelineState) index() *index {
	if p.idx != nil {
		return p.idx
	}
	x := &index{
		queues:    map[string]*Queue{},
		items:     map[string]*Item{},
		byChange:  map[string][]*Item{},
		byBuildSt: map[string]*Item{},
	}
	for _, q := range p.Queues {
		x.queues[q.Name] = q
		for _, it := range q.Items {
			x.add(it)
		}
	}
	p.idx = x
	return x
}

func (x *index) add(it *Item) {
	x.items[it.ID] = it
	id := it.Change.id()
	list := append(x.byChange[id], it)
	for i := len(list) - 1; i > 0 && list[i-1].N > list[i].N; i-- {
		list[i-1], list[i] = list[i], list[i-1]
	}
	x.byChange[id] = list
	if it.BuildSet != nil {
		x.byBuildSt[it.BuildSet.ID] = it
	}
}

func (x *index) remove(it *Item) {
	delete(x.items, it.ID)
	id := it.Change.id()
	list := x.byChange[id]
	for i, o := range list {
		if o == it {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(x.byChange, id)
	} else {
		x.byChange[id] = list
	}
	if it.BuildSet != nil {
		delete(x.byBuildSt, it.BuildSet.ID)
	}
}

func (p *PipelineState) queue(name string) *Queue { return p.index().queues[name] }

func (p *PipelineState) item(id string) *Item {
	if id == "" {
		return nil
	}
	return p.index().items[id]
}

// itemsFor returns the items of a change (or ref) in enqueue order, the
// same whether the index was maintained or rebuilt.
func (p *PipelineState) itemsFor(c *Change) []*Item { return p.index().byChange[c.id()] }

func (p *PipelineState) itemsForKey(k ChangeKey) []*Item {
	c := Change{Project: k.Project, Number: k.Number}
	return p.itemsFor(&c)
}

func (p *PipelineState) addQueue(q *Queue) {
	p.Queues = append(p.Queues, q)
	p.index().queues[q.Name] = q
}

func (p *PipelineState) removeQueue(q *Queue) {
	for i, o := range p.Queues {
		if o == q {
			copy(p.Queues[i:], p.Queues[i+1:])
			p.Queues[len(p.Queues)-1] = nil
			p.Queues = p.Queues[:len(p.Queues)-1]
			break
		}
	}
	delete(p.index().queues, q.Name)
}

func (p *PipelineState) setBuildSet(it *Item, bs *BuildSet) {
	x := p.index()
	if it.BuildSet != nil {
		delete(x.byBuildSt, it.BuildSet.ID)
	}
	it.BuildSet = bs
	if bs != nil {
		x.byBuildSt[bs.ID] = it
	}
}

// checkIndex compares the index with a fresh one; tests call it.
func (p *PipelineState) checkIndex() string {
	have := p.index()
	p.idx = nil
	want := p.index()
	p.idx = have
	if len(have.items) != len(want.items) || len(have.byBuildSt) != len(want.byBuildSt) ||
		len(have.queues) != len(want.queues) || len(have.byChange) != len(want.byChange) {
		return "index sizes differ from a rebuilt index"
	}
	for k, v := range want.items {
		if have.items[k] != v {
			return "item " + k + " differs in the index"
		}
	}
	for k, v := range want.byBuildSt {
		if have.byBuildSt[k] != v {
			return "buildset " + k + " differs in the index"
		}
	}
	for k, v := range want.byChange {
		h := have.byChange[k]
		if len(h) != len(v) {
			return "change " + k + " differs in the index"
		}
		for i := range v {
			if h[i] != v[i] {
				return "change " + k + " order differs in the index"
			}
		}
	}
	return ""
}
