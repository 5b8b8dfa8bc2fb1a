package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// node is a small, position-carrying view of a YAML value. The parser walks
// nodes instead of decoding into structs so that every value keeps its line
// and column and unknown keys can be reported.
type node struct {
	kind   nodeKind
	pos    Pos
	scalar string // for scalars
	quoted bool   // a quoted string: never a number or a keyword
	keys   []keyValue
	items  []*node
}

type keyValue struct {
	key   string
	pos   Pos
	value *node
}

type nodeKind int

const (
	nullNode nodeKind = iota
	scalarNode
	mapNode
	seqNode
)

func (k nodeKind) String() string {
	switch k {
	case scalarNode:
		return "a value"
	case mapNode:
		return "a mapping"
	case seqNode:
		return "a list"
	}
	return "nothing"
}

// parseYAML turns the document into a node tree. A YAML syntax error becomes
// a single positioned problem.
func parseYAML(c *collector, data []byte) *node {
	if bytes.HasPrefix(data, []byte("\xff\xfe")) || bytes.HasPrefix(data, []byte("\xfe\xff")) {
		// yaml.v3 would decode UTF-16, and its positions would no longer
		// be those of the file's bytes.
		c.addf(Pos{Line: 1, Col: 1}, "the policy must be UTF-8 text, not UTF-16")
		return nil
	}
	src := newSource(data)
	first, second, err := decodeDocuments(data)
	switch {
	case err != nil:
		addSyntaxProblem(c, src, err)
		return nil
	case first == nil:
		c.addf(Pos{Line: 1, Col: 1}, "the policy is empty: it needs at least \"version: 1\"")
		return nil
	case second != nil:
		c.addf(src.at(second.Line, second.Column), "a policy file holds one YAML document, this is a second one")
		return nil
	}
	root := first.Content[0]
	cv := &converter{c: c, src: src, tail: documentTail(root)}
	n := cv.convert(root, 0)
	c.problems.Sort() // a key's problems come after those inside it
	return n
}

// decodeDocuments reads every document, so that a syntax error anywhere is
// reported, and returns the first two that are not empty. yaml.v3 panics on
// some malformed input; that becomes an error like any other.
func decodeDocuments(data []byte) (first, second *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			first, second, err = nil, nil, fmt.Errorf("the YAML parser failed on this input: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		doc := new(yaml.Node)
		if err := dec.Decode(doc); errors.Is(err, io.EOF) {
			return first, second, nil
		} else if err != nil {
			return nil, nil, err
		}
		switch {
		case len(doc.Content) == 0 || isEmptyValue(doc.Content[0]):
		case first == nil:
			first = doc
		case second == nil:
			second = doc
		}
	}
}

// isEmptyValue reports whether n stands for nothing written at all: a key
// with no value, a "-" with no item, a "---" with no document.
func isEmptyValue(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Style == 0 && n.Value == "" && n.Anchor == ""
}

// documentTail returns the empty value that ends a block-style document, if
// it ends with one. goccy/go-yaml, the parser before yaml.v3, put that value
// one column further on than any other empty value (outbound: at the end of
// a file is at the column after ": "), and positions stay as they were.
func documentTail(n *yaml.Node) *yaml.Node {
	for (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && n.Style&yaml.FlowStyle == 0 && len(n.Content) > 0 {
		n = n.Content[len(n.Content)-1]
	}
	if isEmptyValue(n) {
		return n
	}
	return nil
}
