package policy

import (
	"strconv"
	"strings"
)

// aliasProblem is the message for any alias, defined or not.
const aliasProblem = "YAML aliases (*name) are not supported in a policy: write the value out"

// Problems that yaml.v3's parser, as opposed to its scanner, reports. It
// gives their line counted from 0, the scanner's from 1.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// Problems that yaml.v3's reader reports, with no line: the text is not
// UTF-8 or holds a character that YAML does not allow.
var readerProblems = map[string]bool{
	"invalid leading UTF-8 octet":        true,
	"incomplete UTF-8 octet sequence":    true,
	"invalid trailing UTF-8 octet":       true,
	"invalid length of a UTF-8 sequence": true,
	"invalid Unicode character":          true,
	"control characters are not allowed": true,
}

// addSyntaxProblem reports a yaml.v3 error as one positioned problem.
// yaml.v3 gives at most a line, "yaml: line N: what", never a column, and
// the line is often where the broken construct starts rather than where it
// breaks. The column is derived where the construct is known (the bracket
// left open in a flow list or mapping, the character that is not allowed)
// and is 1 otherwise.
func addSyntaxProblem(c *collector, src *source, err error) {
	msg := strings.NewReplacer("\n", " ", "\r", " ").Replace(strings.TrimPrefix(err.Error(), "yaml: "))
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, what, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, what
			}
		}
	}
	// An alias to an undefined anchor stops yaml.v3 before there is a node
	// tree; it is reported as any alias is.
	if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		if pos, found := src.aliasAt(strings.TrimSuffix(name, "' referenced")); found {
			c.addf(pos, aliasProblem)
			return
		}
	}
	if line == 0 || parserProblems[msg] {
		line++ // no line at all means the first
	}
	pos := src.at(line, 1)
	switch {
	case readerProblems[msg]:
		if off := src.firstBadChar(); off >= 0 {
			pos = src.posAt(off)
		}
	case msg == "did not find expected ',' or ']'":
		pos.Col = openBracket(src.line(pos.Line), '[')
	case msg == "did not find expected ',' or '}'":
		pos.Col = openBracket(src.line(pos.Line), '{')
	}
	c.addf(pos, "YAML syntax error: %s", msg)
}

// openBracket returns the column of the innermost bracket open (either
// '[' or '{') left unclosed at the end of a line, skipping quoted text and
// comments, or 1 if there is none: yaml.v3 reports an unclosed flow list or
// mapping at the line where it opens.
func openBracket(line []byte, open rune) int {
	type bracket struct {
		r   rune
		col int
	}
	var stack []bracket
	var quote rune
	prev, col := ' ', 0
scan:
	for _, r := range string(line) {
		col++
		top := rune(0)
		if len(stack) > 0 {
			top = stack[len(stack)-1].r
		}
		switch {
		case quote != 0:
			if r == quote && prev != '\\' {
				quote = 0
			}
		case (r == '"' || r == '\'') && strings.ContainsRune(" \t,[{:", prev):
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			break scan
		case r == '[' || r == '{':
			stack = append(stack, bracket{r, col})
		case r == ']' && top == '[' || r == '}' && top == '{':
			stack = stack[:len(stack)-1]
		case r == ']' || r == '}':
			break scan // where yaml.v3 gave up on the innermost one
		}
		prev = r
	}
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].r == open {
			return stack[i].col
		}
	}
	return 1
}
