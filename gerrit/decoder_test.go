package gerrit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func bigEvent(n int) []byte {
	b, _ := json.Marshal(map[string]any{
		"type":    "comment-added",
		"change":  map[string]any{"project": "infra/fetcher", "branch": "main", "number": 4711},
		"comment": "Patch Set 3:\n\n" + strings.Repeat("log line.\n", n/10),
	})
	return b
}

func fixtureLine(t *testing.T, name string) string {
	return string(bytes.TrimRight(readFixture(t, fixtureDir, name), "\n"))
}

type step struct {
	typ     string // event type, or "" for a LineError
	offset  int64
	line    int64 // of a LineError
	comment int   // length of the event's comment
}

// decodeAll runs d to the end and returns what it saw.
func decodeAll(t *testing.T, d *Decoder) []step {
	t.Helper()
	var got []step
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			if _, err := d.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("Next after EOF: %v", err)
			}
			return got
		}
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("Next: %v", err)
			}
			if le.Offset != d.Offset() {
				t.Errorf("LineError offset %d, Offset() %d", le.Offset, d.Offset())
			}
			got = append(got, step{"", le.Offset, le.Line, 0})
			continue
		}
		got = append(got, step{ev.Type, d.Offset(), 0, len(ev.Comment)})
	}
}

func TestDecoderStream(t *testing.T) {
	big := string(bigEvent(5 << 20))
	lines := []string{
		fixtureLine(t, "patchset-created.json") + "\r\n",
		`{"type":"comment-added","change":{"project":"infra/fetcher",` + "\n", // cut short
		fixtureLine(t, "ref-replicated.json") + "\n",                          // unknown type
		"\r\n",
		big + "\r\n",
		fixtureLine(t, "dropped-output.json") + "\n",
		fixtureLine(t, "ref-updated-branch.json"), // no final newline
	}
	var off []int64
	var stream strings.Builder
	for _, l := range lines {
		off = append(off, int64(stream.Len()))
		stream.WriteString(l)
	}
	d := NewDecoder(strings.NewReader(stream.String()))
	got := decodeAll(t, d)
	bigEv, err := ParseEvent([]byte(big))
	if err != nil || len(bigEv.Comment) < 5<<20 {
		t.Fatalf("big event: %v", err)
	}
	want := []step{
		{"patchset-created", off[0], 0, 0},
		{"", off[1], 2, 0},
		{"comment-added", off[4], 0, len(bigEv.Comment)},
		{"dropped-output", off[5], 0, 0},
		{"ref-updated", off[6], 0, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if s, w := d.Stats(), (Stats{Lines: 6, Events: 4, Unknown: 1, Malformed: 1, Dropped: 1}); s != w {
		t.Errorf("stats %+v, want %+v", s, w)
	}
}

func TestDecoderLineTooLong(t *testing.T) {
	ok := fixtureLine(t, "ref-updated-branch.json")
	big := string(bigEvent(5 << 20))
	stream := ok + "\n" + big + "\n" + ok + "\r\n" + big[:1024] + "\r\n"
	d := NewDecoder(strings.NewReader(stream))
	d.SetMaxLineSize(1024)
	var errs []*LineError
	var types []string
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *LineError
		switch {
		case errors.As(err, &le):
			errs = append(errs, le)
		case err != nil:
			t.Fatal(err)
		default:
			types = append(types, ev.Type)
		}
	}
	// The last line is exactly 1024 bytes: not too long, but cut JSON.
	if len(errs) != 2 || !reflect.DeepEqual(types, []string{"ref-updated", "ref-updated"}) {
		t.Fatalf("errors %v, events %v", errs, types)
	}
	le := errs[0]
	if !errors.Is(le, ErrLineTooLong) || le.Offset != int64(len(ok)+1) || le.Line != 2 || le.Text != big[:textMax] {
		t.Errorf("got %+v", le)
	}
	if errors.Is(errs[1], ErrLineTooLong) || errs[1].Line != 4 {
		t.Errorf("line of exactly the maximum: %v", errs[1])
	}
	if want := fmt.Sprintf("stream-events line 2 (offset %d): line too long (more than 1024 bytes): %q", len(ok)+1, big[:textMax]); le.Error() != want {
		t.Errorf("message %q", le.Error())
	}
	if s, w := d.Stats(), (Stats{Lines: 4, Events: 2, Malformed: 2}); s != w {
		t.Errorf("stats %+v, want %+v", s, w)
	}
}

var errBoom = errors.New("connection reset")

func TestDecoderReadError(t *testing.T) {
	ok := fixtureLine(t, "dropped-output.json")
	d := NewDecoder(io.MultiReader(strings.NewReader(ok+"\n"+ok[:10]), iotest.ErrReader(errBoom)))
	if ev, err := d.Next(); err != nil || ev.Type != TypeDroppedOutput {
		t.Fatalf("first: %v, %v", ev, err)
	}
	for i := 0; i < 2; i++ {
		if _, err := d.Next(); !errors.Is(err, errBoom) {
			t.Fatalf("after the line cut by a read error: %v", err)
		}
	}
	if s := d.Stats(); s != (Stats{Lines: 1, Events: 1, Dropped: 1}) {
		t.Errorf("stats %+v", s)
	}
}

func TestDecoderOneByteReads(t *testing.T) {
	first := fixtureLine(t, "comment-added-approve.json")
	stream := first + "\r\n\n" + fixtureLine(t, "vote-deleted.json") + "\n"
	got := decodeAll(t, NewDecoder(iotest.OneByteReader(strings.NewReader(stream))))
	want := []step{
		{"comment-added", 0, 0, len(parseFixture(t, "comment-added-approve.json").Comment)},
		{"vote-deleted", int64(len(first) + 3), 0, len(parseFixture(t, "vote-deleted.json").Comment)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDecoderStatsFromAnotherGoroutine(t *testing.T) {
	d := NewDecoder(strings.NewReader(strings.Repeat(fixtureLine(t, "patchset-created.json")+"\n", 200)))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = d.Stats()
			}
		}
	})
	decodeAll(t, d)
	close(stop)
	wg.Wait()
	if s := d.Stats(); s.Events != 200 {
		t.Errorf("stats %+v", s)
	}
}

// FuzzParseEvent feeds arbitrary bytes to the parser, to Normalize and to a
// Decoder: nothing panics, a parsed event has a type, a normalised event
// keeps the invariants checkNormalized lists, and a Decoder accounts for
// every line with offsets that only grow.
