package yamlstrict

import "gopkg.in/yaml.v3"

// entry is one key of a mapping after merge keys are applied.
type entry struct {
	name     string
	key, val *yaml.Node
}

// entries returns the keys of mapping n in document order, reporting
// duplicate and non-scalar keys. Keys merged in with "<<" (a mapping, an
// alias of one, or a list of those) come after, unless written explicitly;
// among merged mappings the first one giving a key wins, as YAML specifies.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	var out, merged []entry
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.spend(k, path) {
			break
		}
		if isMergeKey(k) {
			merged = append(merged, d.mergeSources(val, path)...)
			continue
		}
		kk := k
		if kk.Kind == yaml.AliasNode && kk.Alias != nil {
			kk = kk.Alias
		}
		if kk.Kind != yaml.ScalarNode {
			d.errorAt(k, path, "a key must be a plain string, not %s", describe(kk))
			continue
		}
		name := kk.Value
		if first, dup := seen[name]; dup {
			d.errorAt(k, Key(path, name), "duplicate key (first written on line %d); the second one is ignored", first.Line)
			continue
		}
		seen[name] = k
		out = append(out, entry{name: name, key: k, val: val})
	}
	for _, e := range merged {
		if _, ok := seen[e.name]; ok {
			continue
		}
		seen[e.name] = e.key
		out = append(out, e)
	}
	return out
}

// mergeSources returns the entries that "<<: v" merges in.
func (d *decoder) mergeSources(v *yaml.Node, path string) []entry {
	n, release, ok := d.resolve(v, path)
	if !ok {
		return nil
	}
	defer release()
	switch n.Kind {
	case yaml.MappingNode:
		return d.entries(n, path)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range n.Content {
			m, rel, ok := d.resolve(item, path)
			if !ok {
				continue
			}
			if m.Kind == yaml.MappingNode {
				out = append(out, d.entries(m, path)...)
			} else {
				d.fail(item, path, "a merge (<<) list must hold mappings, found %s", describe(m))
			}
			rel()
		}
		return out
	}
	d.fail(v, path, "a merge (<<) needs a mapping or a list of mappings, found %s", describe(n))
	return nil
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}
