package firehoseapi

import "bytes"

// Generic JSON scanning: literals, numbers, strings and whole values
// skipped with validation, following encoding/json's grammar exactly.

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (p *parser) literal(lit string) error {
	if len(p.b)-p.i < len(lit) {
		if bytes.HasPrefix([]byte(lit), p.b[p.i:]) {
			return p.errEOF()
		}
		return p.errorf("invalid literal")
	}
	if string(p.b[p.i:p.i+len(lit)]) != lit {
		return p.errorf("invalid literal")
	}
	p.i += len(lit)
	return nil
}

func (p *parser) number() error {
	b := p.b
	i := p.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return p.errEOF()
	}
	switch {
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return &syntaxError{Offset: i, Msg: "invalid character in numeric literal"}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) {
			return p.errEOF()
		}
		if !isDigit(b[i]) {
			return &syntaxError{Offset: i, Msg: "invalid character after decimal point in numeric literal"}
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) {
			return p.errEOF()
		}
		if !isDigit(b[i]) {
			return &syntaxError{Offset: i, Msg: "invalid character in exponent of numeric literal"}
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	p.i = i
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipValue validates and skips one JSON value of any kind, without
// recursion, honouring the nesting limit.
func (p *parser) skipValue() error {
	stack := p.req.stack[:0]
	defer func() { p.req.stack = stack[:0] }()
	base := p.depth
	for {
		// A value starts at p.i (whitespace already skipped).
		if p.i >= len(p.b) {
			return p.errEOF()
		}
		switch c := p.b[p.i]; {
		case c == '{' || c == '[':
			p.i++
			if err := p.push(); err != nil {
				return err
			}
			stack = append(stack, c)
			p.ws()
			if p.i >= len(p.b) {
				return p.errEOF()
			}
			if (c == '{' && p.b[p.i] == '}') || (c == '[' && p.b[p.i] == ']') {
				p.i++
				p.depth--
				stack = stack[:len(stack)-1]
				break
			}
			if c == '{' {
				if err := p.memberKey(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if _, err := p.scanString(); err != nil {
				return err
			}
		case c == 't':
			if err := p.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := p.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := p.literal("null"); err != nil {
				return err
			}
		case c == '-' || isDigit(c):
			if err := p.number(); err != nil {
				return err
			}
		default:
			return p.errorf("invalid character %q looking for beginning of value", c)
		}
		// After a value: close containers or move to the next element.
		for {
			if p.depth == base {
				return nil
			}
			p.ws()
			if p.i >= len(p.b) {
				return p.errEOF()
			}
			top := stack[len(stack)-1]
			c := p.b[p.i]
			if c == ',' {
				p.i++
				p.ws()
				if top == '{' {
					if err := p.memberKey(); err != nil {
						return err
					}
				}
				break
			}
			if (top == '{' && c == '}') || (top == '[' && c == ']') {
				p.i++
				p.depth--
				stack = stack[:len(stack)-1]
				continue
			}
			return p.errorf("invalid character %q after %s element", c, containerName(top))
		}
	}
}

func containerName(c byte) string {
	if c == '{' {
		return "object"
	}
	return "array"
}

// memberKey parses `"key" :` and the whitespace after it.
func (p *parser) memberKey() error {
	if p.i >= len(p.b) {
		return p.errEOF()
	}
	if p.b[p.i] != '"' {
		return p.errorf("invalid character %q looking for beginning of object key string", p.b[p.i])
	}
	if _, err := p.scanString(); err != nil {
		return err
	}
	p.ws()
	if err := p.expect(':'); err != nil {
		return err
	}
	p.ws()
	return nil
}

// scanString validates and skips the string at p.i without unquoting it.
func (p *parser) scanString() (int, error) {
	start := p.i
	i := p.i + 1
	for ; i < len(p.b); i++ {
		c := p.b[i]
		if c == '"' {
			p.i = i + 1
			return start, nil
		}
		if c < 0x20 {
			return 0, &syntaxError{Offset: i, Msg: "invalid control character in string literal"}
		}
		if c == '\\' {
			i++
			if i >= len(p.b) {
				return 0, p.errEOF()
			}
			switch p.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for j := 0; j < 4; j++ {
					i++
					if i >= len(p.b) {
						return 0, p.errEOF()
					}
					if !isHex(p.b[i]) {
						return 0, &syntaxError{Offset: i, Msg: "invalid character in \\u hexadecimal character escape"}
					}
				}
			default:
				return 0, &syntaxError{Offset: i, Msg: "invalid character in string escape code"}
			}
		}
	}
	return 0, p.errEOF()
}
