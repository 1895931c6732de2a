package prefix

import (
	"strings"
	"testing"
	"time"
)

// Expected values are what java.time.format.DateTimeFormatter.ofPattern(p)
// (en_US default locale) prints for the same instant.
func TestTimestampPatterns(t *testing.T) {
	at := time.Date(2019, 10, 1, 9, 20, 18, 123456789, time.UTC) // a Tuesday, day 274
	pm := time.Date(2019, 10, 1, 21, 5, 3, 0, time.UTC)
	midnight := time.Date(2019, 10, 1, 0, 7, 0, 0, time.UTC)
	for _, tc := range []struct {
		pattern string
		at      time.Time
		want    string
	}{
		{"yyyy", at, "2019"},
		{"yy", at, "19"},
		{"y", at, "2019"},
		{"yyyyy", at, "02019"},
		{"uuuu", at, "2019"},
		{"uu", at, "19"},
		{"YYYY", at, "2019"},
		{"MM", at, "10"},
		{"M", time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC), "3"},
		{"MM", time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC), "03"},
		{"MMM", at, "Oct"},
		{"MMMM", at, "October"},
		{"MMMMM", at, "O"},
		{"LLL", at, "Oct"},
		{"dd", at, "01"},
		{"d", at, "1"},
		{"D", at, "274"},
		{"DDD", time.Date(2019, 1, 5, 0, 0, 0, 0, time.UTC), "005"},
		{"HH", at, "09"},
		{"H", at, "9"},
		{"HH", pm, "21"},
		{"hh", pm, "09"},
		{"h", pm, "9"},
		{"hh", midnight, "12"},
		{"k", midnight, "24"},
		{"K", pm, "9"},
		{"a", at, "AM"},
		{"a", pm, "PM"},
		{"mm", at, "20"},
		{"m", pm, "5"},
		{"ss", at, "18"},
		{"s", pm, "3"},
		{"SSS", at, "123"},
		{"S", at, "1"},
		{"SSSSSSSSS", at, "123456789"},
		{"A", at, "33618123"},
		{"E", at, "Tue"},
		{"EEE", at, "Tue"},
		{"EEEE", at, "Tuesday"},
		{"EEEEE", at, "T"},
		{"w", at, "40"},
		{"ww", time.Date(2019, 1, 3, 0, 0, 0, 0, time.UTC), "01"},
		// US weeks: Sunday 2019-12-29 starts week 1 of week-based year 2020.
		{"YYYY-ww", time.Date(2019, 12, 28, 0, 0, 0, 0, time.UTC), "2019-52"},
		{"YYYY-ww", time.Date(2019, 12, 29, 0, 0, 0, 0, time.UTC), "2020-01"},
		{"yyyy YYYY", time.Date(2020, 12, 31, 0, 0, 0, 0, time.UTC), "2020 2021"},
		{"Q", at, "4"},
		{"QQ", at, "04"},
		{"QQQ", at, "Q4"},
		{"QQQQ", at, "4th quarter"},
		{"G", at, "AD"},
		{"Z", at, "+0000"},
		{"X", at, "Z"},
		{"xxx", at, "+00:00"},
		{"Z", at.In(time.FixedZone("", 9*3600)), "+0900"},
		{"XXX", at.In(time.FixedZone("", -(5*3600 + 1800))), "-05:30"},
		{"X", at.In(time.FixedZone("", 2*3600)), "+02"},
		{"ZZZZZ", at, "Z"},
		{"yyyy/MM/dd/HH/", at, "2019/10/01/09/"},
		{"yyyy-MM-dd'T'HH:mm:ss", at, "2019-10-01T09:20:18"},
		{"'year='yyyy'/month='MM", at, "year=2019/month=10"},
		{"''", at, "'"},
		{"'it''s' yyyy", at, "it's 2019"},
		{"yyyy[-MM]", at, "2019-10"},
		{"y_M.d =", at, "2019_10.1 ="},
	} {
		l, err := compileTimeLayout(tc.pattern)
		if err != nil {
			t.Errorf("%q: %v", tc.pattern, err)
			continue
		}
		if got := string(l.appendTime(nil, tc.at)); got != tc.want {
			t.Errorf("%q at %v = %q, want %q", tc.pattern, tc.at, got, tc.want)
		}
		if n := l.maxLen(); n < len(tc.want) {
			t.Errorf("%q: maxLen %d < %d", tc.pattern, n, len(tc.want))
		}
	}
}

func TestTimestampPatternErrors(t *testing.T) {
	for pattern, want := range map[string]string{
		"":           "empty",
		"ddd":        "too many pattern letters: ddd",
		"HHH":        "too many pattern letters: HHH",
		"mmm":        "too many pattern letters",
		"sss":        "too many pattern letters",
		"aa":         "too many pattern letters",
		"MMMMMM":     "too many pattern letters",
		"DDDD":       "too many pattern letters",
		"www":        "too many pattern letters",
		"b":          "unknown pattern letter 'b'",
		"yyyy-ii":    "unknown pattern letter 'i'",
		"VV":         "not supported",
		"zzz":        "not supported",
		"W":          "not supported",
		"ZZZZ":       "not supported",
		"'abc":       "unterminated quote",
		"yyyy]":      "']' without a previous '['",
		"yyyy{":      "reserved",
		"#":          "reserved",
		"yyyy'-MM'-": "", // valid: placeholder to keep the map honest below
	} {
		_, err := compileTimeLayout(pattern)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", pattern, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", pattern, err, want)
		}
	}
}
