package web

import (
	"encoding/json"
	"strconv"
	"time"
)

// The status document is encoded once per turn, without its
// time-dependent fields; serving it for a new second only splices the
// stamped values in front of each item's (and build's) pre-encoded JSON:
// a copy, not a second pass of encoding/json over 1,000 items.

// part is a piece of the pre-encoded status document: static bytes, or an
// item.
type part struct {
	static []byte
	item   *Item
}

// encodeStatus pre-encodes st (built, not yet stamped): its parts, and
// each item's static JSON.
func encodeStatus(st *Status) ([]part, int, error) {
	var parts []part
	size := 0
	static := func(b []byte) {
		parts = append(parts, part{static: b})
		size += len(b)
	}
	var b []byte
	b = append(b, `,"turn":`...)
	b = strconv.AppendUint(b, st.Turn, 10)
	b = append(b, `,"updatedAt":`...)
	b = appendTime(b, st.UpdatedAt)
	if st.GerritURL != "" {
		b = append(b, `,"gerritUrl":`...)
		b = appendJSON(b, st.GerritURL)
	}
	b = append(b, `,"pipelines":[`...)
	for pi := range st.Pipelines {
		p := &st.Pipelines[pi]
		if pi > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSON(b, p.Name)
		b = append(b, `,"manager":`...)
		b = appendJSON(b, p.Manager)
		if p.Description != "" {
			b = append(b, `,"description":`...)
			b = appendJSON(b, p.Description)
		}
		b = append(b, `,"queues":[`...)
		for qi := range p.Queues {
			q := &p.Queues[qi]
			if qi > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSON(b, q.Name)
			b = append(b, `,"window":`...)
			b = strconv.AppendInt(b, int64(q.Window), 10)
			b = append(b, `,"items":[`...)
			for ii := range q.Items {
				it := &q.Items[ii]
				if err := it.encodeStatic(); err != nil {
					return nil, 0, err
				}
				if ii > 0 {
					b = append(b, ',')
				}
				static(b)
				b = nil
				parts = append(parts, part{item: it})
				size += len(it.static) + len(it.buildStatic) + 160
			}
			b = append(b, `]}`...)
		}
		b = append(b, `]}`...)
	}
	b = append(b, "]}\n"...)
	static(b)
	return parts, size, nil
}

// encodeStatic encodes the item without its time-dependent fields (zero,
// so omitted) and without its build, and the build likewise.
func (it *Item) encodeStatic() error {
	c := *it
	c.EnqueuedSeconds, c.ElapsedSeconds, c.RemainingSeconds, c.Build = 0, 0, 0, nil
	var err error
	if it.static, err = json.Marshal(&c); err != nil {
		return err
	}
	it.buildStatic = nil
	if it.Build != nil {
		b := *it.Build
		b.ElapsedSeconds, b.RemainingSeconds = 0, 0
		if it.buildStatic, err = json.Marshal(&b); err != nil {
			return err
		}
	}
	return nil
}

// appendStatus writes the document for the stamped view.
func appendStatus(buf []byte, parts []part, now time.Time) []byte {
	buf = append(buf, `{"now":`...)
	buf = appendTime(buf, now)
	for i := range parts {
		if parts[i].item != nil {
			buf = parts[i].item.appendJSON(buf)
		} else {
			buf = append(buf, parts[i].static...)
		}
	}
	return buf
}

// appendJSON writes the stamped item: its time fields, its static JSON,
// then its build with the build's time fields.
func (it *Item) appendJSON(buf []byte) []byte {
	buf = append(buf, `{"enqueuedSeconds":`...)
	buf = strconv.AppendInt(buf, it.EnqueuedSeconds, 10)
	buf = append(buf, `,"elapsedSeconds":`...)
	buf = strconv.AppendInt(buf, it.ElapsedSeconds, 10)
	buf = append(buf, `,"remainingSeconds":`...)
	buf = strconv.AppendInt(buf, it.RemainingSeconds, 10)
	buf = append(buf, ',')
	buf = append(buf, it.static[1:len(it.static)-1]...) // without its braces
	if b := it.Build; b != nil {
		buf = append(buf, `,"build":{"elapsedSeconds":`...)
		buf = strconv.AppendInt(buf, b.ElapsedSeconds, 10)
		buf = append(buf, `,"remainingSeconds":`...)
		buf = strconv.AppendInt(buf, b.RemainingSeconds, 10)
		buf = append(buf, ',')
		buf = append(buf, it.buildStatic[1:]...) // its closing brace included
	}
	return append(buf, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSON appends s as a JSON string, escaped as encoding/json does.
func appendJSON(b []byte, s string) []byte {
	e, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always encodes
	}
	return append(b, e...)
}
