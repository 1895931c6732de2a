package parquet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// step is one step of a source path: an object key or an array index.
type step struct {
	key   string
	index int // >= 0 for an array index
}

// parsePath parses a source: "name", "a.b.c", "$.a.b[0]", "$['a.b'][2]".
func parsePath(src string) ([]step, error) {
	s := src
	if !strings.HasPrefix(s, "$") {
		if s == "" {
			return nil, errors.New("empty path")
		}
		if !strings.ContainsAny(s, "[]'\"") {
			var steps []step
			for _, k := range strings.Split(s, ".") {
				if k == "" {
					return nil, fmt.Errorf("path %q has an empty key", src)
				}
				steps = append(steps, step{key: k, index: -1})
			}
			return steps, nil
		}
		s = "$." + s
	}
	s = s[1:]
	var steps []step
	for len(s) > 0 {
		switch s[0] {
		case '.':
			s = s[1:]
			n := strings.IndexAny(s, ".[")
			if n < 0 {
				n = len(s)
			}
			if n == 0 {
				return nil, fmt.Errorf("path %q has an empty key", src)
			}
			steps = append(steps, step{key: s[:n], index: -1})
			s = s[n:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: unclosed [", src)
			}
			in := s[1:end]
			if len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0] {
				steps = append(steps, step{key: in[1 : len(in)-1], index: -1})
			} else if i, err := strconv.Atoi(in); err == nil && i >= 0 {
				steps = append(steps, step{index: i})
			} else {
				return nil, fmt.Errorf("path %q: [%s] is neither an index nor a quoted key", src, in)
			}
			s = s[end+1:]
		default:
			return nil, fmt.Errorf("path %q: unexpected %q", src, s[0])
		}
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("path %q selects the whole record", src)
	}
	return steps, nil
}

// lookup follows path from v. A missing key or index yields nil (null).
func lookup(v any, path []step) any {
	for _, st := range path {
		if st.index >= 0 {
			a, ok := v.([]any)
			if !ok || st.index >= len(a) {
				return nil
			}
			v = a[st.index]
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		x, ok := m[st.key]
		if !ok {
			for k, y := range m { // OpenX is case-insensitive by default
				if strings.EqualFold(k, st.key) {
					x, ok = y, true
					break
				}
			}
		}
		if !ok {
			return nil
		}
		v = x
	}
	return v
}
