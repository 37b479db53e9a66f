package gerrit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// ParseEvent reads one line of stream-events. It accepts any JSON object
// with a non-empty "type", known or not (see Event.Known); the error says
// what is wrong with a line it refuses.
func ParseEvent(line []byte) (*Event, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil, errors.New("empty line")
	}
	if line[0] != '{' {
		return nil, fmt.Errorf("not a JSON object: starts with %q", truncate(line, 20))
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return nil, describeJSONError(err)
	}
	if ev.Type == "" {
		return nil, errors.New(`event has no "type"`)
	}
	return &ev, nil
}

func describeJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("field %s: got a JSON %s, want %v", field, typ.Value, typ.Type)
	}
	return fmt.Errorf("invalid event: %v", err)
}

// DefaultMaxLineSize is the longest line a Decoder reads unless told
// otherwise. Gerrit puts whole commit messages in events, and some are
// megabytes long.
const DefaultMaxLineSize = 16 << 20

// ErrLineTooLong is the error of a LineError for a line longer than the
// Decoder's maximum; the line is skipped.
var ErrLineTooLong = errors.New("line too long")

// LineError is a line the Decoder could not read as an event. It does not
// stop the stream: log it and call Next again.
type LineError struct {
	Offset int64  // byte offset of the line's start in the stream
	Line   int64  // line number, from 1
	Text   string // the line's first bytes, for the log
	Err    error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("stream-events line %d (offset %d): %v: %q", e.Line, e.Offset, e.Err, e.Text)
}

func (e *LineError) Unwrap() error { return e.Err }

// textMax is how much of a bad line a LineError quotes.
const textMax = 160

// Stats counts what a Decoder saw. Every non-blank line is exactly one of
// Events, Unknown or Malformed.
type Stats struct {
	Lines     int64 // non-blank lines read
	Events    int64 // events of known types returned, dropped-output included
	Unknown   int64 // events of unknown types, skipped
	Malformed int64 // lines returned as a LineError
	Dropped   int64 // dropped-output events: Gerrit lost events for this stream
}

// Decoder reads stream-events output: one JSON event per line, LF or CRLF
// terminated. It is not safe for concurrent use, except Stats.
type Decoder struct {
	r       *bufio.Reader
	max     int
	buf     []byte
	offset  int64 // bytes consumed so far
	line    int64
	lastOff int64
	err     error // sticky read error

	lines, events, unknown, malformed, dropped atomic.Int64
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10), max: DefaultMaxLineSize}
}

// SetMaxLineSize sets the longest line (without its line terminator) the
// decoder reads; longer lines are skipped and reported as ErrLineTooLong.
// Call it before the first Next.
func (d *Decoder) SetMaxLineSize(n int) {
	if n > 0 {
		d.max = n
	}
}

// Next returns the next event of a known type, skipping blank lines and
// counting and skipping unknown types. A dropped-output event is returned
// like any other: it tells the caller that Gerrit dropped events and a
// resync is due.
//
// A line that is not an event yields a *LineError; the stream goes on and
// the next call reads the following line. At the end of input Next returns
// io.EOF; a read error is returned as is and again on every later call.
func (d *Decoder) Next() (*Event, error) {
	for {
		if d.err != nil {
			return nil, d.err
		}
		line, start, tooLong, err := d.readLine()
		if err != nil {
			d.err = err
			return nil, err
		}
		d.line++
		d.lastOff = start
		line = bytes.TrimRight(line, "\r\n")
		if !tooLong && len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		d.lines.Add(1)
		if tooLong || len(line) > d.max {
			return nil, d.lineError(line, fmt.Errorf("%w (more than %d bytes)", ErrLineTooLong, d.max))
		}
		ev, err := ParseEvent(line)
		d.release()
		if err != nil {
			return nil, d.lineError(line, err)
		}
		if !ev.Known() {
			d.unknown.Add(1)
			continue
		}
		d.events.Add(1)
		if ev.Type == TypeDroppedOutput {
			d.dropped.Add(1)
		}
		return ev, nil
	}
}

// Offset returns the byte offset, in the stream, of the line of the last
// event or LineError Next returned.
func (d *Decoder) Offset() int64 { return d.lastOff }

// Stats returns the counts so far. It may be called from any goroutine.
func (d *Decoder) Stats() Stats {
	return Stats{
		Lines:     d.lines.Load(),
		Events:    d.events.Load(),
		Unknown:   d.unknown.Load(),
		Malformed: d.malformed.Load(),
		Dropped:   d.dropped.Load(),
	}
}

func (d *Decoder) lineError(line []byte, err error) *LineError {
	d.malformed.Add(1)
	text := truncate(line, textMax)
	d.release()
	return &LineError{Offset: d.lastOff, Line: d.line, Text: text, Err: err}
}

// release drops a buffer grown by a huge line, so one such line does not
// pin megabytes for the life of the stream.
func (d *Decoder) release() {
	if cap(d.buf) > 1<<20 {
		d.buf = nil
	}
}

// readLine returns the next line with its terminator and the offset of its
// first byte. A line longer than the maximum is consumed but not kept
// (tooLong). A last line without a terminator is returned before io.EOF; a
// line cut short by any other read error is dropped with the error.
func (d *Decoder) readLine() (line []byte, start int64, tooLong bool, err error) {
	start = d.offset
	d.buf = d.buf[:0]
	limit := d.max + 2 // room for CRLF
	for {
		chunk, err := d.r.ReadSlice('\n')
		d.offset += int64(len(chunk))
		if !tooLong {
			if len(d.buf)+len(chunk) > limit {
				// Keep only the head, for the error message.
				tooLong = true
				if len(d.buf) < textMax {
					d.buf = append(d.buf, chunk[:min(len(chunk), textMax-len(d.buf))]...)
				}
				d.buf = d.buf[:min(len(d.buf), textMax)]
			} else {
				d.buf = append(d.buf, chunk...)
			}
		}
		switch {
		case err == nil:
			return d.buf, start, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && d.offset > start:
			return d.buf, start, tooLong, nil
		default:
			return nil, start, false, err
		}
	}
}
