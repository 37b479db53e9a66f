package pipeline

// growWindow widens a dependent queue's window after a merge.
func (t *tx) growWindow(pc *PipelineConfig, q *Queue) {
	if pc == nil || pc.Manager != Dependent || q == nil {
		return
	}
	w := pc.Window
	n := q.Window
	if w.IncreaseType == "exponential" {
		n = int(float64(n) * w.IncreaseFactor)
	} else {
		n = int(float64(n) + w.IncreaseFactor)
	}
	if n <= q.Window {
		n = q.Window + 1
	}
	if w.Ceiling > 0 && n > w.Ceiling {
		n = w.Ceiling
	}
	if n > maxWindow || n < 0 { // overflow of a large factor
		n = maxWindow
	}
	q.Window = n
}

// shrinkWindow narrows a dependent queue's window after a failure.
func (t *tx) shrinkWindow(pc *PipelineConfig, q *Queue) {
	if pc == nil || pc.Manager != Dependent || q == nil {
		return
	}
	w := pc.Window
	n := q.Window
	if w.DecreaseType == "linear" {
		n = int(float64(n) - w.DecreaseFactor)
	} else {
		n = int(float64(n) / w.DecreaseFactor)
	}
	if n < w.Floor {
		n = w.Floor
	}
	q.Window = n
}
