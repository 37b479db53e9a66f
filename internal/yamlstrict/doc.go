// Package yamlstrict decodes a YAML configuration document into Go structs
// strictly, and remembers where every value was written.
//
// It exists so that an operator who mistypes a key, writes a list where a
// mapping belongs or puts "abc" where a number belongs learns about every such
// mistake at once, each as "file:line: path: message", instead of having the
// daemon start with a setting silently ignored. The Lines it returns turn the
// paths of later semantic checks (such as "pipelines[1].trigger[0].comment")
// into line numbers of the same file.
//
// What it does: walks the yaml.v3 node tree against the Go type by reflection,
// following the `yaml` struct tags (including ",inline"), pointers, slices,
// maps with string keys, scalars, time.Duration written as "30s", anchors,
// aliases and "<<" merge keys; reports every unknown key, duplicate key, wrong
// kind of node and unparsable scalar, and keeps going after each one.
//
// What it must not do: perform I/O (it gets bytes and a file name, never
// opens anything), know anything about Seakeeper's configuration semantics
// (required fields, defaults, value ranges belong to the packages that own
// the types), ignore any part of the document silently, stop at the first
// error, or panic on any input, however malformed.
package yamlstrict
