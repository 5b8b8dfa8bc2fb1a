package policy

import "gopkg.in/yaml.v3"

const maxDepth = 64

// converter turns yaml.v3's nodes into the package's own.
type converter struct {
	c    *collector
	src  *source
	tail *yaml.Node // see documentTail
}

// pos returns where n is written in the file.
func (cv *converter) pos(n *yaml.Node) Pos {
	p := cv.src.at(n.Line, n.Column)
	empty := n.Kind == yaml.ScalarNode && n.Style&^yaml.TaggedStyle == 0 && n.Value == ""
	switch {
	case n == cv.tail:
		p.Col++
	case (n.Anchor != "" || n.Style&yaml.TaggedStyle != 0) && !empty:
		// yaml.v3 places a node at its anchor or tag, goccy/go-yaml at
		// the value itself, which is what a reader looks for.
		p = cv.src.skipProperties(p)
	}
	return p
}

func (cv *converter) convert(n *yaml.Node, depth int) *node {
	pos := cv.pos(n)
	if depth > maxDepth {
		cv.c.addf(pos, "nested too deeply")
		return &node{kind: nullNode, pos: pos}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return scalar(n, pos)
	case yaml.MappingNode:
		out := &node{kind: mapNode, pos: pos, keys: make([]keyValue, 0, len(n.Content)/2)}
		var index map[string]int // key to its line, for the rare big mapping
		if len(n.Content) > 2*smallMapping {
			index = make(map[string]int, len(n.Content)/2)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			cv.addPair(out, index, n.Content[i], n.Content[i+1], depth)
		}
		if len(out.keys) > 0 && n.Style&yaml.FlowStyle == 0 {
			out.pos = out.keys[0].pos // a block mapping starts at its first key
		}
		return out
	case yaml.SequenceNode:
		out := &node{kind: seqNode, pos: pos, items: make([]*node, 0, len(n.Content))}
		for _, item := range n.Content {
			out.items = append(out.items, cv.convert(item, depth+1))
		}
		return out
	case yaml.AliasNode:
		cv.c.addf(pos, aliasProblem)
		return &node{kind: nullNode, pos: pos}
	}
	cv.c.addf(pos, "unsupported YAML construct")
	return &node{kind: nullNode, pos: pos}
}

// scalar converts a scalar. Whether it is null or quoted depends on how it
// is written, never on a tag: "!!str ~" is still nothing and "!!str 1" is
// still the unquoted 1 that version wants.
func scalar(n *yaml.Node, pos Pos) *node {
	style := n.Style &^ yaml.TaggedStyle
	if style == 0 {
		switch n.Value {
		case "", "~", "null", "Null", "NULL":
			return &node{kind: nullNode, pos: pos}
		}
	}
	quoted := style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
	return &node{kind: scalarNode, pos: pos, scalar: n.Value, quoted: quoted}
}

const (
	// mergeTag is yaml.v3's tag for an unquoted <<, a merge key when it is
	// a key and plain text otherwise.
	mergeTag     = "!!merge"
	mergeProblem = "YAML merge keys (<<) are not supported in a policy"
	// smallMapping is the most keys a mapping has before duplicates are
	// looked up in an index rather than among the keys.
	smallMapping = 16
)

func (cv *converter) addPair(out *node, index map[string]int, k, v *yaml.Node, depth int) {
	if k.Kind == yaml.ScalarNode && k.Tag == mergeTag {
		cv.c.addf(cv.pos(k), mergeProblem)
		return
	}
	key := cv.convert(k, depth+1)
	if key.kind != scalarNode {
		cv.c.addf(key.pos, "a key must be a plain word")
		return
	}
	// yaml.v3 keeps duplicate keys in a node tree; a policy refuses them.
	first, dup := index[key.scalar]
	if index == nil {
		for _, kv := range out.keys {
			if kv.key == key.scalar {
				first, dup = kv.pos.Line, true
				break
			}
		}
	}
	if dup {
		cv.c.addf(key.pos, "%q is given twice (first at line %d)", key.scalar, first)
		return
	}
	if index != nil {
		index[key.scalar] = key.pos.Line
	}
	out.keys = append(out.keys, keyValue{key: key.scalar, pos: key.pos, value: cv.convert(v, depth+1)})
}
