package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a 1-based line and column in the policy file.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

// Problem is one positioned finding about a policy.
type Problem struct {
	File string `json:"file"`
	Pos
	Msg string `json:"message"`
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
}

// Problems is every problem found in one policy; it is the error returned by
// Parse and by compile when anything is wrong.
type Problems []*Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// collector gathers problems for one file.
type collector struct {
	file     string
	problems Problems
}

func (c *collector) addf(pos Pos, format string, args ...any) {
	if pos.Line < 1 {
		pos = Pos{Line: 1, Col: 1}
	}
	c.problems = append(c.problems, &Problem{File: c.file, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// NewProblem builds a Problem for callers outside this package (resolution
// errors found while compiling).
func NewProblem(file string, pos Pos, format string, args ...any) *Problem {
	if pos.Line < 1 {
		pos = Pos{Line: 1, Col: 1}
	}
	return &Problem{File: file, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Sort orders problems by position, as a reader meets them.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Col < ps[j].Col
	})
}
