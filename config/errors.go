package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a position in a configuration file. Line and Column are 1-based;
// zero means unknown.
type Pos struct {
	File   string
	Line   int
	Column int
}

// NodePos returns the position of n in file.
func NodePos(file string, n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: file}
	}
	return Pos{File: file, Line: n.Line, Column: n.Column}
}

// String renders the position as FILE:LINE:COL, leaving out what is unknown.
func (p Pos) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	return b.String()
}

// Errorf returns an Error at p.
func (p Pos) Errorf(format string, args ...any) Error {
	return Error{File: p.File, Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)}
}

// Error is one problem found in a configuration, with its position.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

// Pos returns the error's position.
func (e Error) Pos() Pos { return Pos{File: e.File, Line: e.Line, Column: e.Column} }

// Error renders the error as FILE:LINE:COL: message.
func (e Error) Error() string {
	if p := e.Pos().String(); p != "" {
		return p + ": " + e.Msg
	}
	return e.Msg
}

// Errors is every problem found in a configuration. Load, Parse and
// DecodeNode return it (as an error) when it is not empty, sorted by
// position.
type Errors []Error

// Error renders one error per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Sort orders the errors by file, line and column, keeping the order in
// which errors at the same position were found.
func (es Errors) Sort() {
	slices.SortStableFunc(es, func(a, b Error) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
}

// InFile returns a copy of es with File set to file where it is empty (as
// it is in errors from DecodeNode, which does not know the file name).
func (es Errors) InFile(file string) Errors {
	out := make(Errors, len(es))
	for i, e := range es {
		if e.File == "" {
			e.File = file
		}
		out[i] = e
	}
	return out
}

// Err returns es sorted as an error, or nil when es is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	out := slices.Clone(es)
	out.Sort()
	return out
}
