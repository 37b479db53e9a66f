package clock

import (
	"testing"
	"time"
)

func TestSystemTimerFiresAndStops(t *testing.T) {
	var c Clock = System{}
	before := c.Now()
	tm := c.NewTimer(time.Millisecond)
	select {
	case at := <-tm.C():
		if at.Before(before) {
			t.Fatalf("timer fired at %v, before it was made at %v", at, before)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("timer did not fire")
	}
	if tm.Stop() {
		t.Fatal("Stop of a fired timer reported that it stopped it")
	}
	if !c.NewTimer(time.Hour).Stop() {
		t.Fatal("Stop of a pending timer did not report stopping it")
	}
}
