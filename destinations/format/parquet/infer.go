package parquet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// shape accumulates what the sampled values of one field look like.
type shape struct {
	kind    string // "" (only nulls), boolean, int64, double, string, timestamp, date, struct, list, json
	micros  bool   // timestamps with sub-millisecond digits
	present int    // objects in which the value is non-null
	seen    int    // objects in which the parent was present
	objects int    // objects added to this (struct) shape
	fields  map[string]*shape
	order   []string
	elem    *shape
}

// Infer reads up to maxRecords JSON objects (newline-separated or
// concatenated; maxRecords <= 0 reads all) and returns a schema that fits
// them: types widened across records (int64 → double → string; a field
// that is sometimes an object or array and sometimes not becomes json),
// nested objects as structs, arrays as lists, RFC 3339 strings as
// timestamps and YYYY-MM-DD strings as dates. A column is required only
// when every sampled object had a non-null value for it; list items are
// always nullable.
func Infer(r io.Reader, maxRecords int) (Schema, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	root := &shape{kind: TypeStruct}
	n := 0
	for maxRecords <= 0 || n < maxRecords {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			return Schema{}, fmt.Errorf("infer: object %d: %w", n+1, err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return Schema{}, fmt.Errorf("infer: object %d is %s, not a JSON object", n+1, describe(v))
		}
		root.addObject(obj)
		n++
	}
	if n == 0 {
		return Schema{}, errors.New("infer: no JSON objects in the input")
	}
	s := Schema{Columns: root.columns()}
	if err := s.Validate(); err != nil {
		return Schema{}, fmt.Errorf("infer: %w", err)
	}
	return s, nil
}

func (s *shape) addObject(obj map[string]any) {
	if s.fields == nil {
		s.fields = map[string]*shape{}
	}
	s.objects++
	for _, k := range s.order {
		s.fields[k].seen++
	}
	// New keys in sorted order for a stable result (JSON object order is lost).
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, ok := s.fields[k]
		if !ok {
			f = &shape{seen: s.objects} // absent from the earlier objects
			s.fields[k] = f
			s.order = append(s.order, k)
		}
		f.add(obj[k])
	}
}

func (s *shape) add(v any) {
	if v == nil {
		return
	}
	s.present++
	var k string
	switch x := v.(type) {
	case bool:
		k = TypeBoolean
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			k = TypeInt64
		} else {
			k = TypeDouble
		}
	case string:
		k = TypeString
		if len(x) == 10 && x[4] == '-' && x[7] == '-' {
			if _, err := time.Parse("2006-01-02", x); err == nil {
				k = TypeDate
			}
		} else if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			k = TypeTimestamp
			if t.Nanosecond()%1e6 != 0 {
				s.micros = true
			}
		}
	case map[string]any:
		k = TypeStruct
		if s.kind == "" || s.kind == TypeStruct {
			if s.fields == nil {
				s.fields = map[string]*shape{}
			}
			s.addObject(x)
		}
	case []any:
		k = TypeList
		if s.kind == "" || s.kind == TypeList {
			if s.elem == nil {
				s.elem = &shape{}
			}
			for _, e := range x {
				s.elem.add(e)
			}
		}
	}
	s.kind = widen(s.kind, k)
}

func widen(a, b string) string {
	switch {
	case a == "" || a == b:
		return b
	case a == TypeJSON || b == TypeJSON:
		return TypeJSON
	case a == TypeStruct || b == TypeStruct || a == TypeList || b == TypeList:
		return TypeJSON
	case (a == TypeInt64 && b == TypeDouble) || (a == TypeDouble && b == TypeInt64):
		return TypeDouble
	case (a == TypeDate && b == TypeTimestamp) || (a == TypeTimestamp && b == TypeDate):
		return TypeTimestamp
	}
	return TypeString
}

// columnName replaces the characters column names should avoid with '_'.
func columnName(key string) string {
	b := []byte(key)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (s *shape) columns() []Column {
	cols := make([]Column, 0, len(s.order))
	used := map[string]bool{}
	for _, k := range s.order {
		f := s.fields[k]
		name := columnName(k)
		if name == "" {
			name = "_"
		}
		for used[strings.ToLower(name)] {
			name += "_"
		}
		used[strings.ToLower(name)] = true
		c := f.column()
		c.Name = name
		if name != k {
			c.Source = "$[" + strconv.Quote(k) + "]"
		}
		c.Required = f.present == f.seen && f.present > 0
		cols = append(cols, c)
	}
	return cols
}

func (s *shape) column() Column {
	c := Column{Type: s.kind}
	switch s.kind {
	case "":
		c.Type = TypeString // only nulls seen
	case TypeTimestamp:
		c.Unit = UnitMillis
		if s.micros {
			c.Unit = UnitMicros
		}
	case TypeStruct:
		c.Fields = s.columns()
		if len(c.Fields) == 0 {
			c = Column{Type: TypeJSON} // only empty objects seen
		}
	case TypeList:
		items := Column{Type: TypeString}
		if s.elem != nil {
			items = s.elem.column()
		}
		c.Items = &items
	}
	return c
}
