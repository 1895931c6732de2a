package redshift

import (
	"strings"
)

// tokKind is the kind of a lexical token of a SQL statement.
type tokKind int

const (
	tkWord   tokKind = iota // keyword or unquoted identifier (text lowercased)
	tkQIdent                // "quoted identifier" (text unquoted, case kept)
	tkString                // 'string literal' (text unquoted: '' → ')
	tkNumber                // integer or decimal literal
	tkPunct                 // one punctuation character: ( ) , ; . etc.
	tkEOF
)

// token is one lexical token; pos and end are byte offsets in the SQL text.
type token struct {
	kind     tokKind
	text     string
	pos, end int
}

// lex splits SQL text into tokens, skipping white space and comments
// (-- to end of line, nested /* */). It understands the quoting that can hide
// a semicolon or a keyword: 'strings' (with ” and, for E”, backslash
// escapes), "identifiers" and $tag$dollar quotes$tag$. ok is false for an
// unterminated quote or comment: such text is left for the upstream
// PostgreSQL to reject.
func lex(sql string) (toks []token, ok bool) {
	i := 0
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			depth, j := 1, i+2
			for j < len(sql) && depth > 0 {
				switch {
				case strings.HasPrefix(sql[j:], "/*"):
					depth++
					j += 2
				case strings.HasPrefix(sql[j:], "*/"):
					depth--
					j += 2
				default:
					j++
				}
			}
			if depth > 0 {
				return toks, false
			}
			i = j
		case c == '\'' || ((c == 'e' || c == 'E') && i+1 < len(sql) && sql[i+1] == '\''):
			start := i
			backslash := c != '\''
			if backslash {
				i++
			}
			text, end, good := lexString(sql, i, backslash)
			if !good {
				return toks, false
			}
			toks = append(toks, token{tkString, text, start, end})
			i = end
		case c == '"':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(sql) {
					return toks, false
				}
				if sql[j] == '"' {
					if j+1 < len(sql) && sql[j+1] == '"' {
						b.WriteByte('"')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(sql[j])
				j++
			}
			toks = append(toks, token{tkQIdent, b.String(), i, j + 1})
			i = j + 1
		case c == '$' && dollarTag(sql[i:]) != "":
			tag := dollarTag(sql[i:])
			rest := strings.Index(sql[i+len(tag):], tag)
			if rest < 0 {
				return toks, false
			}
			end := i + len(tag) + rest + len(tag)
			toks = append(toks, token{tkString, sql[i+len(tag) : end-len(tag)], i, end})
			i = end
		case isDigit(c) || (c == '.' && i+1 < len(sql) && isDigit(sql[i+1])):
			j := i
			for j < len(sql) && (isDigit(sql[j]) || sql[j] == '.') {
				j++
			}
			toks = append(toks, token{tkNumber, sql[i:j], i, j})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(sql) && (isIdentStart(sql[j]) || isDigit(sql[j]) || sql[j] == '$') {
				j++
			}
			toks = append(toks, token{tkWord, strings.ToLower(sql[i:j]), i, j})
			i = j
		default:
			toks = append(toks, token{tkPunct, sql[i : i+1], i, i + 1})
			i++
		}
	}
	toks = append(toks, token{kind: tkEOF, pos: len(sql), end: len(sql)})
	return toks, true
}

// lexString reads a single-quoted literal whose opening quote is at i.
func lexString(sql string, i int, backslash bool) (text string, end int, ok bool) {
	var b strings.Builder
	j := i + 1
	for j < len(sql) {
		c := sql[j]
		switch {
		case backslash && c == '\\' && j+1 < len(sql):
			b.WriteByte(sql[j+1])
			j += 2
		case c == '\'':
			if j+1 < len(sql) && sql[j+1] == '\'' {
				b.WriteByte('\'')
				j += 2
				continue
			}
			return b.String(), j + 1, true
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, false
}

// dollarTag returns the $tag$ opening s, or "".
func dollarTag(s string) string {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1]
		case isIdentStart(c) || (j > 1 && isDigit(c)):
		default:
			return ""
		}
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

// statement is one statement of a query message: its text and tokens
// (without the terminating semicolon).
type statement struct {
	text string
	toks []token
}

// splitStatements splits a query message at top-level semicolons, dropping
// empty statements. ok is false when the text cannot be tokenized.
func splitStatements(sql string) (stmts []statement, ok bool) {
	toks, ok := lex(sql)
	if !ok {
		return nil, false
	}
	start := 0
	for i, t := range toks {
		if t.kind == tkEOF || (t.kind == tkPunct && t.text == ";") {
			if i > start {
				part := append([]token(nil), toks[start:i]...)
				text := sql[part[0].pos:part[len(part)-1].end]
				stmts = append(stmts, statement{text: text, toks: append(part, token{kind: tkEOF, pos: t.pos, end: t.pos})})
			}
			start = i + 1
		}
	}
	return stmts, true
}

// firstWord is the statement's first keyword, lowercased, or "".
func (s statement) firstWord() string {
	if len(s.toks) > 0 && s.toks[0].kind == tkWord {
		return s.toks[0].text
	}
	return ""
}

// isLastCopyCount reports whether the statement is exactly
// SELECT pg_last_copy_count().
func (s statement) isLastCopyCount() bool {
	want := []string{"select", "pg_last_copy_count", "(", ")"}
	if len(s.toks) != len(want)+1 {
		return false
	}
	for i, w := range want {
		if s.toks[i].text != w || s.toks[i].kind == tkString || s.toks[i].kind == tkQIdent {
			return false
		}
	}
	return true
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteLiteral quotes a PostgreSQL string literal (standard_conforming_strings on).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
