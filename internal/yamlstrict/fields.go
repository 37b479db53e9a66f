package yamlstrict

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// field is one YAML key of a struct type.
type field struct {
	name  string
	index []int // for reflect.Value.FieldByIndex, through inline structs
}

// fieldSet is the keys a struct type accepts.
type fieldSet struct {
	byName map[string]field
	names  []string // sorted, for messages
	err    error    // the type cannot be decoded (a programming error)
}

var fieldCache sync.Map // reflect.Type -> *fieldSet

// fieldsOf returns the YAML keys of struct type t, following `yaml` tags:
// "-" skips a field, ",inline" merges an embedded or named struct's keys into
// t's, and an untagged exported field is named by its lower-cased Go name
// (as yaml.v3 does).
func fieldsOf(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{byName: map[string]field{}}
	fs.err = collectFields(t, nil, fs, map[reflect.Type]bool{})
	for name := range fs.byName {
		fs.names = append(fs.names, name)
	}
	slices.Sort(fs.names)
	actual, _ := fieldCache.LoadOrStore(t, fs)
	return actual.(*fieldSet)
}

func collectFields(t reflect.Type, prefix []int, fs *fieldSet, seen map[reflect.Type]bool) error {
	if seen[t] {
		return fmt.Errorf("struct %s inlines itself", t)
	}
	seen[t] = true
	defer delete(seen, t)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := slices.Contains(strings.Split(opts, ","), "inline")
		index := append(slices.Clone(prefix), i)
		if inline {
			if sf.Type.Kind() != reflect.Struct {
				return fmt.Errorf("field %s.%s: only struct values can be inlined, not %s", t, sf.Name, sf.Type)
			}
			if !sf.IsExported() && !sf.Anonymous {
				return fmt.Errorf("field %s.%s: an inlined field must be exported or embedded", t, sf.Name)
			}
			if err := collectFields(sf.Type, index, fs, seen); err != nil {
				return err
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		if _, dup := fs.byName[name]; dup {
			return fmt.Errorf("struct %s has two fields for key %q", t, name)
		}
		fs.byName[name] = field{name: name, index: index}
	}
	return nil
}
