package policy

import (
	"errors"

	"github.com/goccy/go-yaml/ast"
	yerrors "github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
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

func posOf(tk *token.Token) Pos {
	if tk == nil || tk.Position == nil {
		return Pos{Line: 1, Col: 1}
	}
	return Pos{Line: tk.Position.Line, Col: tk.Position.Column}
}

// parseYAML turns the document into a node tree. A YAML syntax error becomes
// a single positioned problem.
func parseYAML(c *collector, data []byte) *node {
	f, err := yerrors.ParseBytes(data, 0)
	if err != nil {
		pos := Pos{Line: 1, Col: 1}
		msg := err.Error()
		var te interface {
			GetToken() *token.Token
			GetMessage() string
		}
		if errors.As(err, &te) {
			pos = posOf(te.GetToken())
			msg = te.GetMessage()
		}
		c.addf(pos, "YAML syntax error: %s", msg)
		return nil
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		c.addf(Pos{Line: 1, Col: 1}, "the policy is empty: it needs at least \"version: 1\"")
		return nil
	}
	if len(docs) > 1 {
		pos := posOf(docs[1].GetToken())
		if docs[1].Start != nil {
			pos = posOf(docs[1].Start)
		}
		c.addf(pos, "a policy file holds one YAML document, this is a second one")
		return nil
	}
	return convert(c, docs[0].Body, 0)
}

const maxDepth = 64

func convert(c *collector, n ast.Node, depth int) *node {
	if n == nil {
		return &node{kind: nullNode, pos: Pos{Line: 1, Col: 1}}
	}
	pos := posOf(n.GetToken())
	if depth > maxDepth {
		c.addf(pos, "nested too deeply")
		return &node{kind: nullNode, pos: pos}
	}
	switch v := n.(type) {
	case *ast.NullNode:
		return &node{kind: nullNode, pos: pos}
	case *ast.StringNode:
		quoted := v.Token != nil && (v.Token.Type == token.SingleQuoteType || v.Token.Type == token.DoubleQuoteType)
		return &node{kind: scalarNode, pos: pos, scalar: v.Value, quoted: quoted}
	case *ast.LiteralNode:
		s := ""
		if v.Value != nil {
			s = v.Value.Value
		}
		return &node{kind: scalarNode, pos: pos, scalar: s, quoted: true}
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return &node{kind: scalarNode, pos: pos, scalar: n.GetToken().Value}
	case *ast.MappingNode:
		out := &node{kind: mapNode, pos: pos}
		for _, mv := range v.Values {
			addPair(c, out, mv, depth)
		}
		if len(out.keys) > 0 && !v.IsFlowStyle {
			out.pos = out.keys[0].pos // a block mapping starts at its first key
		}
		return out
	case *ast.MappingValueNode:
		out := &node{kind: mapNode, pos: pos}
		addPair(c, out, v, depth)
		if len(out.keys) > 0 {
			out.pos = out.keys[0].pos
		}
		return out
	case *ast.SequenceNode:
		out := &node{kind: seqNode, pos: pos}
		for _, item := range v.Values {
			out.items = append(out.items, convert(c, item, depth+1))
		}
		return out
	case *ast.TagNode:
		return convert(c, v.Value, depth+1)
	case *ast.AnchorNode:
		return convert(c, v.Value, depth+1)
	case *ast.AliasNode:
		c.addf(pos, "YAML aliases (*name) are not supported in a policy: write the value out")
		return &node{kind: nullNode, pos: pos}
	case *ast.MergeKeyNode:
		c.addf(pos, "YAML merge keys (<<) are not supported in a policy")
		return &node{kind: nullNode, pos: pos}
	case *ast.CommentGroupNode, *ast.CommentNode:
		return &node{kind: nullNode, pos: pos}
	}
	c.addf(pos, "unsupported YAML construct")
	return &node{kind: nullNode, pos: pos}
}

func addPair(c *collector, out *node, mv *ast.MappingValueNode, depth int) {
	if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
		c.addf(posOf(mv.Key.GetToken()), "YAML merge keys (<<) are not supported in a policy")
		return
	}
	key := convert(c, mv.Key, depth+1)
	if key.kind != scalarNode {
		c.addf(key.pos, "a key must be a plain word")
		return
	}
	for _, kv := range out.keys {
		if kv.key == key.scalar {
			c.addf(key.pos, "%q is given twice (first at line %d)", key.scalar, kv.pos.Line)
			return
		}
	}
	out.keys = append(out.keys, keyValue{key: key.scalar, pos: key.pos, value: convert(c, mv.Value, depth+1)})
}
