package config

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// expander replaces ${NAME} and ${NAME:-default} in the scalar values of a
// parsed document. It runs on the node tree after parsing, so a variable's
// value can never change the structure of the document and positions stay
// those of the file.
type expander struct {
	file   string
	lines  []string // the source, to point errors at the exact column
	getenv func(string) (string, bool)
	seen   map[*yaml.Node]bool
	errs   Errors
	failed map[*yaml.Node]bool // nodes left unexpanded by an error
}

func (x *expander) walk(n *yaml.Node, path string) {
	if n == nil || x.seen[n] {
		return
	}
	x.seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			x.walk(c, path)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			x.walk(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.MappingNode:
		// Only values are expanded; keys are names written in the file.
		for i := 1; i < len(n.Content); i += 2 {
			x.walk(n.Content[i], join(path, n.Content[i-1].Value))
		}
	case yaml.ScalarNode:
		x.scalar(n, path)
	}
	// Aliases are skipped: their anchor is expanded where it is written,
	// and expanding twice would undo the $${ escape.
}

func (x *expander) scalar(n *yaml.Node, path string) {
	if !strings.Contains(n.Value, "${") {
		return
	}
	var b strings.Builder
	s := n.Value
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				x.errorAt(n, path, i, "unterminated ${ in value %q (write $${ for a literal ${)", s)
				return
			}
			inner := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(inner, ":-")
			if !validEnvName(name) {
				x.errorAt(n, path, i, "invalid environment variable name %q in ${%s}", name, inner)
			} else if v, ok := x.getenv(name); ok && (v != "" || !hasDef) {
				b.WriteString(v)
			} else if hasDef {
				b.WriteString(def)
			} else {
				x.errorAt(n, path, i, "environment variable %s is not set (use ${%s:-default} for a default)", name, name)
			}
			i += 2 + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	n.Value = b.String()
	retag(n)
}

// retag gives an expanded scalar the type its new text has when that is a
// number or a boolean (so that port: ${PORT} is an integer), and keeps it a
// string otherwise (so that a variable holding "null" or "~" stays text).
func retag(n *yaml.Node) {
	tag, style := n.Tag, n.Style
	n.Tag, n.Style = "", 0
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool":
		return
	}
	n.Tag, n.Style = "!!str", style
	if tag != "" && tag != "!" && tag != "!!str" {
		n.Tag = tag
	}
}

// errorAt reports an error at byte offset off of n's value: at the exact
// column when the source text there is the reference itself, else at n.
func (x *expander) errorAt(n *yaml.Node, path string, off int, format string, args ...any) {
	p := NodePos(x.file, n)
	col := n.Column + utf8.RuneCountInString(n.Value[:off])
	if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
		col++
	}
	if n.Line >= 1 && n.Line <= len(x.lines) {
		line := x.lines[n.Line-1]
		if r := []rune(line); col-1 < len(r) && strings.HasPrefix(string(r[col-1:]), "${") &&
			!strings.Contains(n.Value[:off], "\n") {
			p.Column = col
		}
	}
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	x.errs = append(x.errs, p.Errorf("%s", msg))
	x.failed[n] = true
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// expandEnv expands environment references in every scalar value under
// root. src is the source text (for exact error columns). It returns the
// errors and the nodes they leave unexpanded, which decoding skips so that
// one problem is reported once.
func expandEnv(file string, src []byte, root *yaml.Node, getenv func(string) (string, bool)) (Errors, map[*yaml.Node]bool) {
	x := &expander{
		file:   file,
		lines:  strings.Split(string(src), "\n"),
		getenv: getenv,
		seen:   map[*yaml.Node]bool{},
		failed: map[*yaml.Node]bool{},
	}
	x.walk(root, "")
	return x.errs, x.failed
}
