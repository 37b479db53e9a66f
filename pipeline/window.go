package pipeline

import "fmt"

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

// compile fills the window defaults and checks them.
func (w *WindowConfig) compile(path string) []ConfigError {
	var errs []ConfigError
	add := func(sub, format string, args ...any) {
		errs = append(errs, ConfigError{Path: path + sub, Msg: fmt.Sprintf(format, args...)})
	}
	if w.Initial == 0 {
		w.Initial = DefaultWindow
	}
	if w.Floor == 0 {
		w.Floor = DefaultWindowFloor
		if w.Initial < w.Floor {
			w.Floor = w.Initial
		}
	}
	if w.IncreaseType == "" {
		w.IncreaseType = "linear"
	}
	if w.DecreaseType == "" {
		w.DecreaseType = "exponential"
	}
	if w.IncreaseFactor == 0 {
		w.IncreaseFactor = 1
		if w.IncreaseType == "exponential" {
			w.IncreaseFactor = 2
		}
	}
	if w.DecreaseFactor == 0 {
		w.DecreaseFactor = 2
		if w.DecreaseType == "linear" {
			w.DecreaseFactor = 1
		}
	}
	for _, kv := range [][2]string{{".increase-type", w.IncreaseType}, {".decrease-type", w.DecreaseType}} {
		if kv[1] != "linear" && kv[1] != "exponential" {
			add(kv[0], "unknown window type %q (want linear or exponential)", kv[1])
		}
	}
	switch {
	case w.Initial < 0:
		add(".initial", "the window must be positive, not %d", w.Initial)
	case w.Floor < 1:
		add(".floor", "the window floor must be at least 1, not %d", w.Floor)
	case w.Initial < w.Floor:
		add(".initial", "initial window %d is below the floor %d", w.Initial, w.Floor)
	}
	switch {
	case w.Ceiling < 0:
		add(".ceiling", "the window ceiling must be positive (or 0 for none), not %d", w.Ceiling)
	case w.Ceiling != 0 && w.Ceiling < w.Initial:
		add(".ceiling", "window ceiling %d is below the initial window %d", w.Ceiling, w.Initial)
	}
	// Written as !(x > y) so that NaN fails too.
	if min := map[bool]float64{true: 1, false: 0}[w.IncreaseType == "exponential"]; !(w.IncreaseFactor > min) || w.IncreaseFactor > maxWindowFactor {
		add(".increase-factor", "increase factor %g would not grow the window sensibly", w.IncreaseFactor)
	}
	if min := map[bool]float64{true: 1, false: 0}[w.DecreaseType == "exponential"]; !(w.DecreaseFactor > min) || w.DecreaseFactor > maxWindowFactor {
		add(".decrease-factor", "decrease factor %g would not shrink the window sensibly", w.DecreaseFactor)
	}
	return errs
}

// maxWindowFactor bounds window factors; maxWindow bounds the window
// itself when no ceiling is set.
const (
	maxWindowFactor = 1000
	maxWindow       = 10000
)
