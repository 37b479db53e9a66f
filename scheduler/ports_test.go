package scheduler

import (
	"testing"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/merger"
)

// The adapters satisfy the scheduler's narrow interfaces.
var (
	_ GerritAPI = (*gerrit.Client)(nil)
	_ MergerAPI = (*merger.Merger)(nil)
	_ BuildAPI  = (*argo.Adapter)(nil)
)

func TestNewRequiresAdapters(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without adapters: no error")
	}
}
