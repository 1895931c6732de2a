package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DecodeNode decodes node strictly into out, which must be a non-nil
// pointer (usually to an options struct with yaml tags). It is the decoder
// Sluice uses for its own file, exported so that components decode their
// options the same way:
//
//   - a key that matches no field is an error (with a suggestion when the
//     key looks like a typo); so is a duplicate key;
//   - a value of the wrong type is an error ("a string where a number
//     goes"); null leaves a field unchanged, so fields pre-set to defaults
//     keep them;
//   - a "type" key at the top level of node is ignored (it selects the
//     component, see Component);
//   - every problem is reported, not only the first: the result is an
//     Errors sorted by position (File is empty: use Component.Decode, or
//     Errors.InFile, to name the file).
//
// Fields may be of any string, bool, integer or float kind, pointers,
// slices, maps with string keys, structs (",inline" is honoured),
// time.Duration (a string such as "30s"), Size ("64MiB" or bytes),
// Component, []Component and *yaml.Node (the raw node, kept for later).
// Merge keys (<<: *anchor) and aliases are followed.
func DecodeNode(node *yaml.Node, out any) error {
	d := &decoder{}
	return d.decodeRoot(node, out, "", true)
}

// decoder walks yaml nodes into Go values, collecting errors.
type decoder struct {
	file string
	errs Errors
	// pos, when not nil, records where each decoded value was written,
	// keyed by the value's address and type, so that validation can point
	// at the value it rejects.
	pos map[posKey]Pos
	// skip holds nodes already reported (by environment expansion).
	skip map[*yaml.Node]bool
}

type posKey struct {
	addr uintptr
	typ  reflect.Type
}

func (d *decoder) decodeRoot(node *yaml.Node, out any, path string, skipType bool) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("config: decode target must be a non-nil pointer, got %T", out)
	}
	if node != nil && node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return nil
		}
		node = node.Content[0]
	}
	if node == nil {
		return nil
	}
	if skipType && v.Elem().Kind() == reflect.Struct {
		d.decodeStruct(node, v.Elem(), path, func(key string) bool { return key == "type" })
	} else {
		d.decode(node, v.Elem(), path)
	}
	return d.errs.Err()
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.errs = append(d.errs, NodePos(d.file, n).Errorf("%s", msg))
}

func (d *decoder) record(v reflect.Value, n *yaml.Node) {
	if d.pos != nil && v.CanAddr() {
		d.pos[posKey{v.Addr().Pointer(), v.Type()}] = NodePos(d.file, n)
	}
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's kind and value for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unsupported node"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n == nil || d.skip[n] {
		return
	}
	switch v.Type() {
	case reflect.TypeFor[*yaml.Node]():
		v.Set(reflect.ValueOf(n))
		d.record(v, n)
		return
	case reflect.TypeFor[Component]():
		d.decodeComponent(n, v, path)
		return
	case reflect.TypeFor[time.Duration]():
		d.decodeDuration(n, v, path)
		return
	case reflect.TypeFor[Size]():
		d.decodeSize(n, v, path)
		return
	}
	// A component's own scalar types (e.g. a size type of its own) decode
	// through encoding.TextUnmarshaler, with positioned errors.
	if n.Kind == yaml.ScalarNode && !isNull(n) && v.CanAddr() {
		if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
			d.record(v, n)
			if err := tu.UnmarshalText([]byte(n.Value)); err != nil {
				d.errorf(n, path, "%v", err)
			}
			return
		}
	}
	if isNull(n) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return
	}
	d.record(v, n)
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path, nil)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.decodeScalar(n, v, path)
	}
}

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's key/value pairs, expanding merge keys (explicit
// keys win over merged ones, earlier merges over later ones) and reporting
// duplicate and non-string keys.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var explicit, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergePairs(val, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be strings, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, path, "duplicate key %q (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		explicit = append(explicit, pair{k, val})
	}
	for _, p := range merged {
		if _, dup := seen[p.key.Value]; !dup {
			seen[p.key.Value] = p.key
			explicit = append(explicit, p)
		}
	}
	return explicit
}

func (d *decoder) mergePairs(val *yaml.Node, path string) []pair {
	val = resolve(val)
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(val, path)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range val.Content {
			if item = resolve(item); item.Kind != yaml.MappingNode {
				d.errorf(item, path, "merge (<<) needs mappings, got %s", describe(item))
				continue
			}
			out = append(out, d.pairs(item, path)...)
		}
		return out
	}
	d.errorf(val, path, "merge (<<) needs a mapping or a list of mappings, got %s", describe(val))
	return nil
}

// fieldsOf maps yaml keys to the struct's field indices, following
// ",inline" structs.
func fieldsOf(t reflect.Type) (map[string][]int, []string) {
	fields := map[string][]int{}
	var names []string
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			index := append(append([]int(nil), prefix...), i)
			if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
				walk(f.Type, index)
				continue
			}
			if !f.IsExported() || tag == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if _, dup := fields[name]; !dup {
				fields[name] = index
				names = append(names, name)
			}
		}
	}
	walk(t, nil)
	return fields, names
}

// decodeStruct decodes mapping n into struct v; keys for which ignore
// returns true are skipped.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, ignore func(key string) bool) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields, names := fieldsOf(v.Type())
	for _, p := range d.pairs(n, path) {
		key := p.key.Value
		index, ok := fields[key]
		if !ok {
			if ignore != nil && ignore(key) {
				continue
			}
			msg := fmt.Sprintf("unknown key %q", key)
			if s := suggest(key, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(p.key, path, "%s", msg)
			continue
		}
		d.decode(p.val, v.FieldByIndex(index), join(path, key))
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.errorf(n, path, "cannot decode into a map keyed by %s", t.Key())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	for _, p := range d.pairs(n, path) {
		elem := reflect.New(t.Elem()).Elem()
		d.decode(p.val, elem, join(path, p.key.Value))
		v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(t.Key()), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	v.Set(s)
	for i, item := range n.Content {
		d.decode(item, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected %s, got %s", kindName(v.Kind()), describe(n))
		return
	}
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if tag != "!!bool" || err != nil {
			d.errorf(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := parseInt(n)
		if err == nil && v.OverflowInt(i) {
			err = fmt.Errorf("%s is out of range", n.Value)
		}
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := parseInt(n)
		if err == nil && (i < 0 || v.OverflowUint(uint64(i))) {
			err = fmt.Errorf("%s is out of range", n.Value)
		}
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		v.SetUint(uint64(i))
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if (tag != "!!int" && tag != "!!float") || err != nil || math.IsNaN(f) {
			d.errorf(n, path, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, path, "cannot decode into a value of type %s", v.Type())
	}
}

func parseInt(n *yaml.Node) (int64, error) {
	switch n.ShortTag() {
	case "!!int":
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is out of range", n.Value)
		}
		return i, nil
	case "!!float":
		return 0, fmt.Errorf("expected an integer, got number %s", n.Value)
	}
	return 0, fmt.Errorf("expected an integer, got %s", describe(n))
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	}
	return "a scalar"
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	d.record(v, n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
			d.errorf(n, path, "duration %s needs a unit, e.g. \"%ss\"", n.Value, n.Value)
			return
		}
		d.errorf(n, path, "expected a duration such as \"30s\", got %s", describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, path, "invalid duration %q (use a number and a unit: ms, s, m, h, e.g. \"30s\")", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) decodeSize(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	d.record(v, n)
	var s Size
	var err error
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int":
		var i int64
		if i, err = parseInt(n); err == nil {
			s = Size(i)
			if s < 0 {
				err = fmt.Errorf("size must not be negative, got %s", n.Value)
			}
		}
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		s, err = ParseSize(n.Value)
	default:
		err = fmt.Errorf("expected a size such as \"64MiB\" or a number of bytes, got %s", describe(n))
	}
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	v.SetInt(int64(s))
}

func (d *decoder) decodeComponent(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	d.record(v, n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping with a type key, got %s", describe(n))
		return
	}
	c := Component{Node: n, Pos: NodePos(d.file, n), Path: path}
	found := false
	for _, p := range d.pairs(n, path) {
		if p.key.Value != "type" {
			continue
		}
		found = true
		t := resolve(p.val)
		if t.Kind != yaml.ScalarNode || t.ShortTag() != "!!str" || t.Value == "" {
			d.errorf(t, join(path, "type"), "expected a component type name, got %s", describe(t))
			continue
		}
		c.Type = t.Value
	}
	if !found {
		d.errorf(n, path, "missing key \"type\"")
	}
	v.Set(reflect.ValueOf(c))
}

// suggest returns the name closest to key when it is close enough to be a
// likely typo.
func suggest(key string, names []string) string {
	best, bestDist := "", max(1, len(key)/3)+1
	for _, name := range names {
		if strings.EqualFold(name, key) {
			return name
		}
		if dist := levenshtein(strings.ToLower(key), name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
