// Package pipeline is Seakeeper's functional core: the model of changes,
// items, queues and buildsets, the three queue managers (independent,
// dependent, supercedent), windows, dependency resolution and trigger and
// requirement matching.
//
// Its one entry point is the transition Engine.Apply(state, event), which
// returns the actions the shell must carry out (prepare a speculative merge,
// start or cancel a build, report to Gerrit). Time arrives as a field of the
// event; every action carries a stable ID so the shell can make it
// idempotent; the state serialises to JSON and round-trips unchanged.
//
// It must not do I/O of any kind: no network, files, processes, clocks,
// goroutines or randomness. The scheduler, the simulator and the tests drive
// it; `go list -deps ./pipeline` is checked to stay free of such imports.
package pipeline
