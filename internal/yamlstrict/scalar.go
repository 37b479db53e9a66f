package yamlstrict

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var durationType = reflect.TypeFor[time.Duration]()

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// scalar decodes a string, boolean or number. Strings take any scalar as
// written; booleans, integers and floats must be written as such (quoted
// "5" is a string, yes/no are not booleans, and .nan and .inf are not
// accepted as numbers: no setting wants them).
func (d *decoder) scalar(at, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(at, path, "expected %s, found %s", kindName(v.Kind()), describe(n))
		return
	}
	tag := n.ShortTag()
	if !strings.HasPrefix(tag, "!!") {
		d.fail(at, path, "unsupported YAML tag %s", tag)
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(at, path, "expected true or false, found %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil {
			d.fail(at, path, "expected an integer, found %s", describe(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(at, path, "%s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if tag != "!!int" || n.Decode(&u) != nil {
			d.fail(at, path, "expected an integer of at least 0, found %s", describe(n))
			return
		}
		if v.OverflowUint(u) {
			d.fail(at, path, "%s is out of range", n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if tag != "!!int" && tag != "!!float" || n.Decode(&f) != nil {
			d.fail(at, path, "expected a number, found %s", describe(n))
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(at, path, "expected a finite number, found %s", describe(n))
			return
		}
		if v.OverflowFloat(f) {
			d.fail(at, path, "%s is out of range", n.Value)
			return
		}
		v.SetFloat(f)
	}
}

// duration decodes a time.Duration written as Go writes them: "90s",
// "1h30m". A bare 0 is accepted too.
func (d *decoder) duration(at, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(at, path, "expected a duration, found %s", describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(at, path, "expected a duration such as 90s, 15m or 24h, found %s", describe(n))
		return
	}
	v.SetInt(int64(dur))
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "an integer"
	}
}

// describe names what a node is, for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing (null)"
		}
		s := quote(n.Value)
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			return "the string " + s
		}
		return s
	}
	return "an unknown kind of node"
}

// quote quotes a value for a message, shortening long ones.
func quote(s string) string {
	const max = 40
	if r := []rune(s); len(r) > max {
		return fmt.Sprintf("%q…", string(r[:max]))
	}
	return fmt.Sprintf("%q", s)
}
