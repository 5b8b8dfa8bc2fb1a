package policy

import (
	"bytes"
	"sort"
	"unicode/utf8"
)

// source is the policy text as the YAML parser read it. It turns the
// parser's lines and columns into the file's own and finds the text under a
// position, for the few places where the parser keeps no position of its
// own (syntax errors, the value behind an anchor or a tag).
type source struct {
	data  []byte
	bom   int        // length of a UTF-8 byte order mark, which yaml.v3 skips
	lines int        // line count as an editor shows it
	yaml  []yamlLine // only when yaml.v3 counts lines differently, see newSource
	start []int      // byte offset of each line, built on first use
	last  cursor     // the last position looked up, see offset
}

// cursor is a file position and its byte offset.
type cursor struct {
	Pos
	off int
}

// yamlLine is where one of yaml.v3's lines lies in the file.
type yamlLine struct {
	line int // the file's line
	col  int // columns on the file's line before the yaml.v3 line starts
}

var bom = []byte("\ufeff")

// Characters that yaml.v3 takes for line breaks, as YAML 1.1 did, but that
// an editor shows inside a line.
var yamlOnlyBreaks = [][]byte{[]byte("\u0085"), []byte("\u2028"), []byte("\u2029")}

// newSource reads data, whose CRLF line ends are already LF; a lone CR still
// ends a line, for yaml.v3 as for an editor.
func newSource(data []byte) *source {
	s := &source{data: data, lines: bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 1}
	if bytes.HasPrefix(data, bom) {
		s.bom = len(bom)
	}
	for _, b := range yamlOnlyBreaks {
		if bytes.Contains(data, b) {
			s.yaml = s.yamlLines()
			break
		}
	}
	return s
}

// yamlLines maps each of yaml.v3's lines onto the file.
func (s *source) yamlLines() []yamlLine {
	out := []yamlLine{{line: 1}}
	line, col := 1, 0 // the file line and the characters on it so far
	for i := s.bom; i < len(s.data); i++ {
		if b := s.data[i]; b == '\n' || b == '\r' {
			line, col = line+1, 0
			out = append(out, yamlLine{line: line})
			continue
		}
		if utf8.RuneStart(s.data[i]) {
			col++
		}
		for _, b := range yamlOnlyBreaks {
			if bytes.HasPrefix(s.data[i:], b) {
				out = append(out, yamlLine{line: line, col: col})
			}
		}
	}
	return out
}

// at returns the file position of yaml.v3's 1-based line and column, kept
// inside the file so that a problem never points past its end.
func (s *source) at(line, col int) Pos {
	if s.yaml != nil && line >= 1 && line <= len(s.yaml) {
		y := s.yaml[line-1]
		line, col = y.line, y.col+col
	}
	return Pos{Line: min(max(line, 1), s.lines), Col: max(col, 1)}
}

func (s *source) lineStarts() []int {
	if s.start == nil {
		s.start = make([]int, 1, s.lines)
		s.start[0] = s.bom
		for i, b := range s.data {
			if b == '\n' || b == '\r' {
				s.start = append(s.start, i+1)
			}
		}
	}
	return s.start
}

// line returns the text of a file line, without its line break.
func (s *source) line(n int) []byte {
	start := s.lineStarts()
	n = min(max(n, 1), len(start))
	if n == len(start) {
		return s.data[start[n-1]:]
	}
	return s.data[start[n-1] : start[n]-1] // a line break is one byte, CR or LF
}

// offset returns the byte offset of a file position. Positions are looked
// up in file order, so each lookup walks on from the last one on the same
// line rather than from the line's start, which on a long line costs as much
// as the line itself.
func (s *source) offset(p Pos) int {
	line := min(max(p.Line, 1), len(s.lineStarts()))
	cur := cursor{Pos{Line: line, Col: 1}, s.start[line-1]}
	if s.last.Line == line && s.last.Col <= p.Col {
		cur = s.last
	}
	text := s.line(line)[cur.off-s.start[line-1]:]
	for ; cur.Col < p.Col && len(text) > 0; cur.Col++ {
		_, w := utf8.DecodeRune(text)
		text, cur.off = text[w:], cur.off+w
	}
	s.last = cur
	return cur.off
}

// posAt returns the file position of a byte offset, walking on from the
// last lookup like offset.
func (s *source) posAt(off int) Pos {
	start := s.lineStarts()
	n := sort.Search(len(start), func(i int) bool { return start[i] > off }) // the line after off's
	if n == 0 {
		return Pos{Line: 1, Col: 1}
	}
	cur := cursor{Pos{Line: n, Col: 1}, start[n-1]}
	if s.last.Line == n && s.last.off <= off {
		cur = s.last
	}
	cur.Col += utf8.RuneCount(s.data[cur.off:off])
	cur.off = off
	s.last = cur
	return cur.Pos
}

// skipProperties returns the position of the content that follows an
// anchor (&name) or a tag (!tag) at p, perhaps on a later line: a value is
// reported where it is written, not where its decorations start.
func (s *source) skipProperties(p Pos) Pos {
	i := s.offset(p)
	for i < len(s.data) {
		switch b := s.data[i]; b {
		case '&', '!':
			end := bytes.IndexAny(s.data[i:], " \t\n\r,[]{}")
			if bytes.HasPrefix(s.data[i:], []byte("!<")) {
				end = bytes.IndexByte(s.data[i:], '>') + 1
			}
			if end <= 0 {
				return p // nothing follows the property
			}
			i += end
		case ' ', '\t', '\n', '\r':
			i++
		case '#':
			i += max(1, bytes.IndexAny(s.data[i:], "\n\r"))
		default:
			return s.posAt(i)
		}
	}
	return p
}

// firstBadChar returns the offset of the first byte that yaml.v3 refuses to
// read: one that is not UTF-8 or a character YAML does not allow in a file.
func (s *source) firstBadChar() int {
	for i := s.bom; i < len(s.data); {
		r, w := utf8.DecodeRune(s.data[i:])
		if r == utf8.RuneError && w == 1 || !yamlPrintable(r) {
			return i
		}
		i += w
	}
	return -1
}

func yamlPrintable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7E || r == 0x85 ||
		r >= 0xA0 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= utf8.MaxRune
}

// aliasAt returns the position of the first "*name" alias in the text.
func (s *source) aliasAt(name string) (Pos, bool) {
	needle := []byte("*" + name)
	for from := 0; from < len(s.data); {
		i := bytes.Index(s.data[from:], needle)
		if i < 0 {
			break
		}
		i += from
		end := i + len(needle)
		before := i == 0 || bytes.IndexByte([]byte(" \t\n\r,[{"), s.data[i-1]) >= 0
		after := end == len(s.data) || bytes.IndexByte([]byte(" \t\n\r,]}"), s.data[end]) >= 0
		if before && after {
			return s.posAt(i), true
		}
		from = i + 1
	}
	return Pos{}, false
}
