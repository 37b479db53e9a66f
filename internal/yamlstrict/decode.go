package yamlstrict

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decode parses data, which must hold one YAML document whose top level is
// a mapping, into out, a non-nil pointer (usually to a struct already holding
// defaults: keys absent from the document leave their field as it was; a key
// present replaces the field, a list or map as a whole). filename is used in
// messages only.
//
// It returns where every value was written, and every problem found, sorted
// by line, each an *Error printing as "file:line: path: message". Values
// that could not be decoded keep their previous contents. Lines is never nil.
func Decode(filename string, data []byte, out any) (*Lines, []error) {
	d := &decoder{
		lines:     newLines(filename),
		budget:    10000 + 100*len(data),
		expanding: map[*yaml.Node]bool{},
	}
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		d.lines.failed[""] = true
		return d.lines, []error{&Error{File: filename, Msg: fmt.Sprintf("yamlstrict: Decode needs a non-nil pointer, not %T", out)}}
	}
	if root := d.parse(data, rv.Elem().Type()); root != nil {
		d.lines.record("", root.Line, root.Column)
		d.value(root, rv.Elem(), "")
	}
	Sort(d.errs)
	return d.lines, slices.CompactFunc(d.errs, func(a, b error) bool { return a.Error() == b.Error() })
}

type decoder struct {
	lines *Lines
	errs  []error
	// budget bounds the work on documents whose aliases expand
	// exponentially ("billion laughs").
	budget     int
	overBudget bool
	// expanding holds the anchored nodes whose alias is being decoded, to
	// refuse an alias inside its own anchor.
	expanding map[*yaml.Node]bool
}

// maxErrors bounds the report: past it, more problems add nothing useful.
const maxErrors = 100

// errorAt records a problem at node n about the value at path.
func (d *decoder) errorAt(n *yaml.Node, path, format string, args ...any) {
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, &Error{File: d.lines.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, &Error{File: d.lines.file, Line: n.Line, Column: n.Column,
			Msg: fmt.Sprintf("too many problems; only the first %d are reported", maxErrors)})
	}
}

// fail records a problem that leaves the value at path undecoded.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.lines.failed[path] = true
	d.errorAt(n, path, format, args...)
}

// spend takes one unit of work from the budget, reporting once when it is
// exhausted.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	d.budget--
	if d.budget >= 0 {
		return true
	}
	if !d.overBudget {
		d.overBudget = true
		d.fail(n, path, "the document expands to too many values (aliases nested too deeply?); decoding stopped here")
	}
	return false
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parse returns the top-level node of the single document in data, or nil
// after recording why there is none.
func (d *decoder) parse(data []byte, t reflect.Type) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := safeDecode(dec, &doc)
	if err == io.EOF || err == nil && isEmptyDocument(&doc) {
		d.lines.failed[""] = true
		d.errs = append(d.errs, &Error{File: d.lines.file, Line: 1, Msg: "the document is empty; expected a mapping" + expectedKeys(t)})
		return nil
	}
	if err != nil {
		d.syntax(err)
		return nil
	}
	var next yaml.Node
	switch err := safeDecode(dec, &next); {
	case err == io.EOF:
	case err != nil:
		d.syntax(err)
	default:
		d.errorAt(&next, "", "a second YAML document starts here; the file must hold exactly one")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		d.fail(root, "", "the top level must be a mapping%s, not %s", expectedKeys(t), describe(root))
		return nil
	}
	return root
}

// safeDecode parses the next document, turning a panic of the YAML parser
// on hostile input into an error.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse the document: %v", r)
		}
	}()
	return dec.Decode(n)
}

func isEmptyDocument(doc *yaml.Node) bool {
	return len(doc.Content) == 0 || isNull(doc.Content[0])
}

// parserProblems start the messages of yaml.v3's parser (as opposed to its
// scanner), which numbers lines from 0.
var parserProblems = []string{"did not find expected ", "found undefined tag handle", "found duplicate %", "found incompatible YAML document"}

// syntax records a parse error. yaml.v3 reports no line for problems on the
// first line, so that is where those go.
func (d *decoder) syntax(err error) {
	msg, line := err.Error(), 1
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		msg = msg[len(m[0]):]
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			line = n
			if slices.ContainsFunc(parserProblems, func(p string) bool { return strings.HasPrefix(msg, p) }) {
				line++
			}
		}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	d.lines.failed[""] = true
	d.errs = append(d.errs, &Error{File: d.lines.file, Line: line, Msg: "YAML syntax error: " + msg})
}

// expectedKeys describes the keys a struct type accepts, for messages
// about a document that has none.
func expectedKeys(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	fs := fieldsOf(t)
	if fs.err != nil || len(fs.names) == 0 {
		return ""
	}
	return " with keys " + strings.Join(fs.names, ", ")
}

// resolve follows aliases. The release function must be called once the
// target is decoded.
func (d *decoder) resolve(n *yaml.Node, path string) (*yaml.Node, func(), bool) {
	var held []*yaml.Node
	release := func() {
		for _, h := range held {
			delete(d.expanding, h)
		}
	}
	for n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil {
			release()
			d.fail(n, path, "alias *%s refers to no anchor", n.Value)
			return nil, nil, false
		}
		if d.expanding[target] {
			release()
			d.fail(n, path, "alias *%s is used inside its own anchor", n.Value)
			return nil, nil, false
		}
		d.expanding[target] = true
		held = append(held, target)
		n = target
	}
	return n, release, true
}

// value decodes node n into v, the value at path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(n, path) {
		return
	}
	at := n // where the value is written, for messages
	n, release, ok := d.resolve(n, path)
	if !ok {
		return
	}
	defer release()
	if isNull(n) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return
	}
	if v.Type() == durationType {
		d.duration(at, n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(at, n, v, path)
	case reflect.Map:
		d.mapping(at, n, v, path)
	case reflect.Slice:
		d.sequence(at, n, v, path)
	case reflect.Interface:
		d.anyValue(at, n, v, path)
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		d.scalar(at, n, v, path)
	default:
		d.fail(at, path, "yamlstrict: cannot decode into Go type %s", v.Type())
	}
}

func (d *decoder) structure(at, n *yaml.Node, v reflect.Value, path string) {
	fs := fieldsOf(v.Type())
	if fs.err != nil {
		d.fail(at, path, "yamlstrict: cannot decode into Go type %s: %v", v.Type(), fs.err)
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(at, path, "expected a mapping, found %s", describe(n))
		return
	}
	for _, e := range d.entries(n, path) {
		kp := Key(path, e.name)
		d.lines.record(kp, e.key.Line, e.key.Column)
		f, ok := fs.byName[e.name]
		if !ok {
			d.errorAt(e.key, kp, "unknown key%s", hint(e.name, fs.names))
			continue
		}
		d.value(e.val, v.FieldByIndex(f.index), kp)
	}
}

func (d *decoder) mapping(at, n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.fail(at, path, "yamlstrict: cannot decode into Go type %s: map keys must be strings", t)
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(at, path, "expected a mapping, found %s", describe(n))
		return
	}
	entries := d.entries(n, path)
	m := reflect.MakeMapWithSize(t, len(entries))
	for _, e := range entries {
		kp := Key(path, e.name)
		d.lines.record(kp, e.key.Line, e.key.Column)
		key := reflect.New(t.Key()).Elem()
		key.SetString(e.name)
		elem := reflect.New(t.Elem()).Elem()
		d.value(e.val, elem, kp)
		m.SetMapIndex(key, elem)
	}
	v.Set(m)
}

func (d *decoder) sequence(at, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(at, path, "expected a list, found %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := Index(path, i)
		d.lines.record(ip, item.Line, item.Column)
		d.value(item, s.Index(i), ip)
	}
	v.Set(s)
}

func (d *decoder) anyValue(at, n *yaml.Node, v reflect.Value, path string) {
	if v.NumMethod() != 0 {
		d.fail(at, path, "yamlstrict: cannot decode into Go type %s", v.Type())
		return
	}
	var x any
	if err := n.Decode(&x); err != nil {
		d.fail(at, path, "cannot decode %s: %s", describe(n), strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	if x != nil {
		v.Set(reflect.ValueOf(x))
	}
}
