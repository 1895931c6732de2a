package checks_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// PromQL words that are not metric names when they stand alone.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"start": true, "end": true, "inf": true, "nan": true, "group_left": true, "group_right": true,
	// Aggregations, which may be followed by a by/without clause before
	// their parenthesis.
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// Clauses followed by a list of label names.
var promqlLabelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// metricNames returns the metric names a PromQL expression selects, in
// order of appearance: identifiers that are not functions or aggregations
// (followed by "("), keywords, label names (in {...} matchers and in by,
// without, on, ignoring, group_left and group_right lists), strings,
// numbers, durations ([5m], offset 1h) or Grafana variables. Selecting by
// {__name__=...} is refused: its names could not be checked.
func metricNames(expr string) ([]string, error) {
	var names []string
	depth := 0
	skipString := func(i int) (int, error) {
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && q != '`':
				j++
			case expr[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string at %d in %q", i, expr)
	}
	// skipGroup skips from an opening bracket to its match, strings
	// included, and returns what was inside.
	skipGroup := func(i int, open, close byte) (int, string, error) {
		level := 0
		for j := i; j < len(expr); {
			switch c := expr[j]; {
			case c == '"' || c == '\'' || c == '`':
				k, err := skipString(j)
				if err != nil {
					return 0, "", err
				}
				j = k
				continue
			case c == open:
				level++
			case c == close:
				level--
				if level == 0 {
					return j + 1, expr[i+1 : j], nil
				}
			}
			j++
		}
		return 0, "", fmt.Errorf("unbalanced %c at %d in %q", open, i, expr)
	}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	nextNonSpace := func(i int) int {
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '{':
			j, inside, err := skipGroup(i, '{', '}')
			if err != nil {
				return nil, err
			}
			if regexp.MustCompile(`(^|[\s,])__name__\s*[=!]`).MatchString(inside) {
				return nil, fmt.Errorf("a selector by __name__ in %q: name the metric instead", expr)
			}
			i = j
		case c == '[':
			j, _, err := skipGroup(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced ) at %d in %q", i, expr)
			}
			i++
		case c == '$': // a Grafana variable
			i++
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			next := nextNonSpace(j)
			followedByParen := next < len(expr) && expr[next] == '('
			switch lw := strings.ToLower(word); {
			case promqlLabelLists[lw] && followedByParen:
				k, _, err := skipGroup(next, '(', ')')
				if err != nil {
					return nil, err
				}
				j = k
			case followedByParen, promqlKeywords[lw]:
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced ( in %q", expr)
	}
	return names, nil
}

// templateQueryNames reads a Grafana Prometheus variable query:
// label_values(SELECTOR, label), label_values(label), query_result(EXPR).
func templateQueryNames(q string) ([]string, error) {
	q = strings.TrimSpace(q)
	if m := regexp.MustCompile(`^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$`).FindStringSubmatch(q); m != nil {
		return metricNames(m[1])
	}
	if regexp.MustCompile(`^label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$`).MatchString(q) {
		return nil, nil
	}
	if inner, ok := strings.CutPrefix(q, "query_result("); ok && strings.HasSuffix(inner, ")") {
		return metricNames(strings.TrimSuffix(inner, ")"))
	}
	return nil, fmt.Errorf("variable query %q: not a form this test reads", q)
}

func TestMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`histogram_quantile(0.99, sum by (le, operation) (rate(a_seconds_bucket{x="y}", le!~"z"}[$__rate_interval])))`, []string{"a_seconds_bucket"}},
		{`sum(rate(b_total[5m])) by (stream) / on(instance) group_left(version) c_info`, []string{"b_total", "c_info"}},
		{`count(d{stream=~"$stream"} == 0) or vector(0)`, []string{"d"}},
		{`time() - max without (shard) (e) offset 5m`, []string{"e"}},
		{"f > 64 * 1024 * 1e3 and deriv(g[30m:1m]) > 0 unless h", []string{"f", "g", "h"}},
		{`label_replace(i, "dst", "$1", "src", "(.*)")`, []string{"i"}},
		{`sum by (instance, stream) (rate(j[5m])) > 0 or k > bool 1`, []string{"j", "k"}},
		{`ns:job:rate5m{a="b"} @ start()`, []string{"ns:job:rate5m"}},
		{"up{job=\"sluice\"} == 0 # down", []string{"up"}},
	} {
		got, err := metricNames(c.expr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("metricNames(%q) = %q, %v; want %q", c.expr, got, err, c.want)
		}
	}
	for _, bad := range []string{`{__name__="x"}`, `sum(rate(x[5m])`, `x{a="b"`, `rate(x[5m]))`, `x{a="b}`} {
		if got, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q) = %q, want an error", bad, got)
		}
	}
	for q, want := range map[string][]string{
		`label_values(sluice_build_info, instance)`:                         {"sluice_build_info"},
		`label_values(sluice_buffer_backlog_bytes{instance=~"$i"}, stream)`: {"sluice_buffer_backlog_bytes"},
		`label_values(instance)`:                                            nil,
		`query_result(topk(5, x))`:                                          {"x"},
	} {
		got, err := templateQueryNames(q)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("templateQueryNames(%q) = %q, %v; want %q", q, got, err, want)
		}
	}
	if _, err := templateQueryNames(`metrics(sluice_.*)`); err == nil {
		t.Error("templateQueryNames(metrics(...)): want an error")
	}
}
