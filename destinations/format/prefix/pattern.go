package prefix

import (
	"regexp"
	"strconv"
	"strings"
)

// DeadLetterPattern matches every key DeadLetterKey gives stream's dead
// letters, capturing the error output type as the group "type", and
// returns the literal start of the error prefix (the text before its
// first expression: where to list them). It reads the parsed error
// prefix, so it follows the grammar Parse accepts: a time expression
// matches whatever its pattern prints within one path element or more
// (its literals exactly), random-string its hex characters, the error
// output type one path element (the first time it appears is captured:
// written twice with nothing between, the split is ambiguous).
func (s *Spec) DeadLetterPattern(stream string) (*regexp.Regexp, string) {
	const outputType = `[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,127}`
	var b strings.Builder
	b.WriteString("^")
	root, rooted, typed := "", false, false
	for _, sg := range s.errPrefix {
		if sg.kind != segLiteral {
			rooted = true
		} else if !rooted {
			root += sg.text
		}
		switch sg.kind {
		case segLiteral:
			b.WriteString(regexp.QuoteMeta(sg.text))
		case segErrorType:
			if typed {
				b.WriteString(outputType)
			} else {
				b.WriteString(`(?P<type>` + outputType + `)`)
				typed = true
			}
		case segRandom:
			b.WriteString(`[0-9a-f]{` + strconv.Itoa(randomLen) + `}`)
		case segTime:
			for _, it := range sg.layout {
				if it.letter == 0 {
					b.WriteString(regexp.QuoteMeta(it.text))
				} else {
					b.WriteString(`[^/]+?`)
				}
			}
		}
	}
	// ObjectName without the extension, for a stream name and a UUID.
	b.WriteString(regexp.QuoteMeta(stream) + "-" + StreamVersion +
		`-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	return regexp.MustCompile(b.String()), root // quoted literals and fixed classes: always compiles
}
