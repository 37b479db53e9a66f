package pipeline

import (
	"strings"
	"testing"
)

// finalReport returns the message of the pipeline's last non-start report.
func (h *harness) finalReport(pipeline string) string {
	for i := len(h.reports) - 1; i >= 0; i-- {
		if a := h.reports[i]; a.Pipeline == pipeline && a.Report.Outcome != OutcomeStart {
			return a.Report.Message
		}
	}
	h.t.Fatalf("no final report in %s", pipeline)
	return ""
}

// The reporter's own message replaces the default headline rather than
// being followed by it; without one, the headline opens the report.
func TestReportHeadlineOnlyOnce(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Pipelines[0].Report.Success.Message = "Build succeeded (check pipeline)."
	})
	h.change("A", "org/a")
	h.upload("A")
	h.releaseAll()
	msg := h.finalReport("check")
	if n := strings.Count(msg, "Build succeeded (check pipeline)."); n != 1 {
		t.Errorf("the headline appears %d times in %q, want once", n, msg)
	}
	if !strings.HasPrefix(msg, "Build succeeded (check pipeline).\n\n- workflow succeeded") {
		t.Errorf("report = %q, want the reporter's message, then the workflow lines", msg)
	}

	h = newHarness(t)
	h.change("B", "org/a")
	h.upload("B")
	h.releaseAll("B")
	msg = h.finalReport("check")
	if !strings.HasPrefix(msg, "Build failed (check pipeline).\n\n- workflow failed") {
		t.Errorf("report without a reporter message = %q, want the default headline first", msg)
	}
}
