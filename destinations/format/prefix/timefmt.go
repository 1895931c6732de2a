package prefix

import (
	"fmt"
	"strconv"
	"time"
)

// A timeLayout is a compiled Java DateTimeFormatter pattern: the value of a
// !{timestamp:...} expression.
type timeLayout []timeItem

// timeItem is one element of a pattern: literal text (letter == 0) or a
// run of count pattern letters.
type timeItem struct {
	letter byte
	count  int
	text   string
}

// Pattern letters Java's DateTimeFormatter defines that Sluice does not
// format. Using one is an error that says so (rather than "unknown").
const unsupportedLetters = "VzOWeFcNgBn"

// maxCount is the largest run of each supported letter Java accepts.
// Longer runs are Java's "Too many pattern letters" error.
func maxCount(letter byte) int {
	switch letter {
	case 'y', 'u', 'Y':
		return 19
	case 'S':
		return 9
	case 'A':
		return 19
	case 'M', 'L', 'E', 'Q', 'q', 'G', 'Z':
		return 5
	case 'D', 'X', 'x':
		return 3
	case 'd', 'H', 'h', 'k', 'K', 'm', 's', 'w':
		return 2
	case 'a':
		return 1
	}
	return 0
}

// compileTimeLayout parses a Java DateTimeFormatter pattern. Letters are
// pattern letters; text in single quotes is literal and ” is a single
// quote (inside or outside quotes); any other character is literal.
// Optional sections ([...]) are accepted and always printed, which is
// what Java does when formatting a full date-time.
func compileTimeLayout(p string) (timeLayout, error) {
	if p == "" {
		return nil, fmt.Errorf("empty timestamp pattern")
	}
	var out timeLayout
	lit := func(s string) {
		if n := len(out); n > 0 && out[n-1].letter == 0 {
			out[n-1].text += s
			return
		}
		out = append(out, timeItem{text: s})
	}
	depth := 0
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\'':
			if i+1 < len(p) && p[i+1] == '\'' {
				lit("'")
				i += 2
				continue
			}
			// Quoted literal up to the closing quote; '' inside is a quote.
			j := i + 1
			var text []byte
			for {
				if j >= len(p) {
					return nil, fmt.Errorf("pattern %q: unterminated quote at offset %d", p, i)
				}
				if p[j] == '\'' {
					if j+1 < len(p) && p[j+1] == '\'' {
						text = append(text, '\'')
						j += 2
						continue
					}
					break
				}
				text = append(text, p[j])
				j++
			}
			lit(string(text))
			i = j + 1
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(p) && p[j] == c {
				j++
			}
			n := j - i
			max := maxCount(c)
			switch {
			case max == 0 && contains(unsupportedLetters, c):
				return nil, fmt.Errorf("pattern %q: pattern letter %q is valid in Java but not supported by Sluice", p, c)
			case max == 0:
				return nil, fmt.Errorf("pattern %q: unknown pattern letter %q", p, c)
			case n > max:
				return nil, fmt.Errorf("pattern %q: too many pattern letters: %s", p, p[i:j])
			case c == 'Z' && n == 4:
				return nil, fmt.Errorf("pattern %q: pattern ZZZZ (localized offset) is not supported by Sluice", p)
			}
			out = append(out, timeItem{letter: c, count: n})
			i = j
		case c == '[':
			depth++
			i++
		case c == ']':
			if depth == 0 {
				return nil, fmt.Errorf("pattern %q: ']' without a previous '['", p)
			}
			depth--
			i++
		case c == '{' || c == '}' || c == '#':
			return nil, fmt.Errorf("pattern %q: %q is reserved", p, c)
		default:
			lit(string(c))
			i++
		}
	}
	return out, nil
}

func contains(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// maxLen is the longest text the layout can produce (for years up to
// 9999), used to check the 512-character rule when a prefix has no
// partition keys.
func (l timeLayout) maxLen() int {
	n := 0
	for _, it := range l {
		switch it.letter {
		case 0:
			n += len(it.text)
		case 'y', 'u', 'Y':
			if it.count == 2 {
				n += 2
			} else {
				n += max(it.count, 4)
			}
		case 'd', 'H', 'h', 'k', 'K', 'm', 's', 'w':
			n += 2
		case 'D':
			n += 3
		case 'S':
			n += it.count
		case 'M', 'L':
			n += [...]int{0, 2, 2, 3, 9, 1}[it.count]
		case 'E':
			n += [...]int{0, 3, 3, 3, 9, 1}[it.count]
		case 'Q', 'q':
			n += [...]int{0, 1, 2, 2, 11, 1}[it.count]
		case 'G':
			n += [...]int{0, 2, 2, 2, 11, 1}[it.count]
		case 'a':
			n += 2
		case 'Z', 'X', 'x':
			n += 9
		case 'A':
			n += max(it.count, 8)
		}
	}
	return n
}

// appendTime formats t (already in the destination's time zone).
func (l timeLayout) appendTime(b []byte, t time.Time) []byte {
	for _, it := range l {
		b = it.appendTo(b, t)
	}
	return b
}

var (
	monthNames = [...]string{"January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"}
	dayNames = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
)

func (it timeItem) appendTo(b []byte, t time.Time) []byte {
	n := it.count
	switch it.letter {
	case 0:
		return append(b, it.text...)
	case 'y', 'u':
		return appendYear(b, t.Year(), n)
	case 'Y':
		wby, _ := weekOfWeekBasedYear(t)
		return appendYear(b, wby, n)
	case 'M', 'L':
		m := int(t.Month())
		switch n {
		case 1, 2:
			return appendPadded(b, m, n)
		case 3:
			return append(b, monthNames[m-1][:3]...)
		case 4:
			return append(b, monthNames[m-1]...)
		default:
			return append(b, monthNames[m-1][0])
		}
	case 'd':
		return appendPadded(b, t.Day(), n)
	case 'D':
		return appendPadded(b, t.YearDay(), n)
	case 'Q', 'q':
		q := (int(t.Month())-1)/3 + 1
		switch n {
		case 1, 2:
			return appendPadded(b, q, n)
		case 3:
			return strconv.AppendInt(append(b, 'Q'), int64(q), 10)
		case 4:
			return append(b, [...]string{"1st", "2nd", "3rd", "4th"}[q-1]+" quarter"...)
		default:
			return strconv.AppendInt(b, int64(q), 10)
		}
	case 'E':
		d := dayNames[t.Weekday()]
		switch n {
		case 4:
			return append(b, d...)
		case 5:
			return append(b, d[0])
		default:
			return append(b, d[:3]...)
		}
	case 'G':
		switch n {
		case 4:
			return append(b, "Anno Domini"...)
		case 5:
			return append(b, 'A')
		default:
			return append(b, "AD"...)
		}
	case 'a':
		if t.Hour() < 12 {
			return append(b, "AM"...)
		}
		return append(b, "PM"...)
	case 'H':
		return appendPadded(b, t.Hour(), n)
	case 'k':
		h := t.Hour()
		if h == 0 {
			h = 24
		}
		return appendPadded(b, h, n)
	case 'K':
		return appendPadded(b, t.Hour()%12, n)
	case 'h':
		h := t.Hour() % 12
		if h == 0 {
			h = 12
		}
		return appendPadded(b, h, n)
	case 'm':
		return appendPadded(b, t.Minute(), n)
	case 's':
		return appendPadded(b, t.Second(), n)
	case 'S':
		// Fraction of second, truncated to n digits.
		frac := strconv.AppendInt(nil, int64(t.Nanosecond())+1e9, 10)[1:]
		return append(b, frac[:n]...)
	case 'A':
		ms := ((t.Hour()*60+t.Minute())*60+t.Second())*1000 + t.Nanosecond()/1e6
		return appendPadded(b, ms, n)
	case 'w':
		_, w := weekOfWeekBasedYear(t)
		return appendPadded(b, w, n)
	case 'Z':
		_, off := t.Zone()
		switch n {
		case 5:
			return appendOffset(b, off, true, true, false)
		default:
			return appendOffset(b, off, false, false, true)
		}
	case 'X', 'x':
		_, off := t.Zone()
		if off == 0 && it.letter == 'X' {
			return append(b, 'Z')
		}
		switch n {
		case 1:
			return appendOffset(b, off, false, false, off%3600 != 0)
		case 2:
			return appendOffset(b, off, false, false, true)
		default:
			return appendOffset(b, off, true, false, true)
		}
	}
	return b
}

// appendYear formats a year as Java does: two letters give the last two
// digits; otherwise the full year, zero-padded to the number of letters.
func appendYear(b []byte, y, n int) []byte {
	if n == 2 {
		return appendPadded(b, ((y%100)+100)%100, 2)
	}
	if n > 4 && y > 9999 {
		b = append(b, '+') // SignStyle.EXCEEDS_PAD
	}
	return appendPadded(b, y, n)
}

func appendPadded(b []byte, v, width int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], int64(v), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// appendOffset writes +HH, +HHMM or +HH:MM (with colon), or "Z" for a zero
// offset when zeroZ is set (ZZZZZ).
func appendOffset(b []byte, off int, colon, zeroZ, minutes bool) []byte {
	if off == 0 && zeroZ {
		return append(b, 'Z')
	}
	sign := byte('+')
	if off < 0 {
		sign = '-'
		off = -off
	}
	b = appendPadded(append(b, sign), off/3600, 2)
	if minutes {
		if colon {
			b = append(b, ':')
		}
		b = appendPadded(b, off%3600/60, 2)
	}
	return b
}

// weekOfWeekBasedYear returns the week-based year and week (pattern letters
// Y and w) with the week definition of Java's default locale on an
// en_US JVM: weeks start on Sunday and week 1 is the week that contains
// January 1st (WeekFields.of(Locale.US): SUNDAY, minimal days 1). So
// 2019-12-29 (a Sunday) is week 1 of week-based year 2020.
func weekOfWeekBasedYear(t time.Time) (year, week int) {
	day := civilDay(t.Year(), t.Month(), t.Day())
	y := t.Year()
	if next := weekOneStart(y + 1); day >= next {
		return y + 1, 1
	}
	return y, int((day-weekOneStart(y))/7) + 1
}

// weekOneStart is the Sunday on or before January 1st of year y, as a
// civil day number.
func weekOneStart(y int) int64 {
	jan1 := civilDay(y, time.January, 1)
	wd := time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC).Weekday()
	return jan1 - int64(wd)
}

func civilDay(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}
