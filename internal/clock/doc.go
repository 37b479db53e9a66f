// Package clock is the injectable source of time shared by Seakeeper's
// adapters: timestamps, timers for keepalives, backoffs and deadlines.
// Tests pass their own Clock; production code uses System.
//
// It must stay a tiny interface over package time: no scheduling, no
// global instance, no test seams.
package clock
