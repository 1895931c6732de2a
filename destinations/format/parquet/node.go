package parquet

import (
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// decimalBytes is the fixed length of decimals over 18 digits.
const decimalBytes = 16

type kind uint8

const (
	kString kind = iota
	kInt32
	kInt64
	kFloat
	kDouble
	kBoolean
	kTimestamp
	kDate
	kDecimal
	kJSON
	kList
	kStruct
)

// kindOf maps a type name to its kind.
func kindOf(t string) kind {
	switch t {
	case TypeInt32:
		return kInt32
	case TypeInt64:
		return kInt64
	case TypeFloat:
		return kFloat
	case TypeDouble:
		return kDouble
	case TypeBoolean:
		return kBoolean
	case TypeTimestamp:
		return kTimestamp
	case TypeDate:
		return kDate
	case TypeDecimal:
		return kDecimal
	case TypeJSON:
		return kJSON
	case TypeList:
		return kList
	case TypeStruct:
		return kStruct
	}
	return kString
}

// column is a compiled Column: where its value comes from, how it is
// converted and where its values go in a row.
type column struct {
	path     string // for messages: device.os, tags[]
	typ      string
	kind     kind
	optional bool
	source   []step // nil for list items
	fields   []*column
	elem     *column
	leaf     int // leaf column index (leaves only)
	first    int // first leaf index under this node
	leaves   int // number of leaves under this node
	repLevel int // repetition level of this node's values
	micros   bool

	precision, scale int
	scaleFactor      *big.Rat // 10^scale
	maxUnscaled      *big.Int // 10^precision
}

// compile builds the Parquet node of c and its compiled column; leaf
// indexes are assigned depth-first, in the order parquet-go numbers them.
func compile(c *Column, path string, rep int, next *int) (parquet.Node, *column, error) {
	col := &column{path: path, typ: c.Type, kind: kindOf(c.Type), optional: !c.Required, first: *next, repLevel: rep}
	if c.Name != "" {
		src := c.Source
		if src == "" {
			src = c.Name
			if !strings.ContainsAny(src, ".[]") {
				col.source = []step{{key: src, index: -1}}
			}
		}
		if col.source == nil {
			s, err := parsePath(src)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			col.source = s
		}
	}
	var node parquet.Node
	switch col.kind {
	case kStruct:
		g := structNode{Group: parquet.Group{}}
		for i := range c.Fields {
			f := &c.Fields[i]
			n, fc, err := compile(f, path+"."+f.Name, rep, next)
			if err != nil {
				return nil, nil, err
			}
			g.Group[f.Name] = n
			g.fields = append(g.fields, field{Node: n, name: f.Name})
			col.fields = append(col.fields, fc)
		}
		node = g
	case kList:
		n, ec, err := compile(c.Items, path+"[]", rep+1, next)
		if err != nil {
			return nil, nil, err
		}
		col.elem = ec
		node = parquet.List(n)
	default:
		col.leaf = *next
		*next++
		switch col.kind {
		case kString, kJSON:
			node = parquet.String()
		case kInt32:
			node = parquet.Leaf(parquet.Int32Type)
		case kInt64:
			node = parquet.Leaf(parquet.Int64Type)
		case kFloat:
			node = parquet.Leaf(parquet.FloatType)
		case kDouble:
			node = parquet.Leaf(parquet.DoubleType)
		case kBoolean:
			node = parquet.Leaf(parquet.BooleanType)
		case kTimestamp:
			col.micros = c.Unit == UnitMicros
			if col.micros {
				node = parquet.Timestamp(parquet.Microsecond)
			} else {
				node = parquet.Timestamp(parquet.Millisecond)
			}
		case kDate:
			node = parquet.Date()
		case kDecimal:
			col.precision, col.scale = c.Precision, c.Scale
			col.scaleFactor = new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.Scale)), nil))
			col.maxUnscaled = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.Precision)), nil)
			switch {
			case c.Precision <= 9:
				node = parquet.Decimal(c.Scale, c.Precision, parquet.Int32Type)
			case c.Precision <= 18:
				node = parquet.Decimal(c.Scale, c.Precision, parquet.Int64Type)
			default:
				node = parquet.Decimal(c.Scale, c.Precision, parquet.FixedLenByteArrayType(decimalBytes))
			}
		}
	}
	col.leaves = *next - col.first
	if col.optional {
		node = parquet.Optional(node)
	} else {
		node = parquet.Required(node)
	}
	return node, col, nil
}

// compileSchema returns the Parquet schema and the compiled root columns.
func compileSchema(s Schema) (*parquet.Schema, []*column, int, error) {
	root := structNode{Group: parquet.Group{}}
	var cols []*column
	next := 0
	for i := range s.Columns {
		c := &s.Columns[i]
		n, col, err := compile(c, c.Name, 0, &next)
		if err != nil {
			return nil, nil, 0, err
		}
		root.Group[c.Name] = n
		root.fields = append(root.fields, field{Node: n, name: c.Name})
		cols = append(cols, col)
	}
	return parquet.NewSchema("sluice", root), cols, next, nil
}

// structNode is a group whose fields keep the schema's order (parquet.Group
// sorts them by name). The embedded Group supplies the other methods.
type structNode struct {
	parquet.Group
	fields []parquet.Field
}

func (g structNode) Fields() []parquet.Field { return g.fields }

func (g structNode) GoType() reflect.Type {
	sf := make([]reflect.StructField, len(g.fields))
	for i, f := range g.fields {
		sf[i] = reflect.StructField{Name: "F" + strconv.Itoa(i), Type: f.GoType(), Tag: reflect.StructTag(`parquet:` + strconv.Quote(f.Name()))}
	}
	return reflect.StructOf(sf)
}

// field names a node in its parent.
type field struct {
	parquet.Node
	name string
}

func (f field) Name() string { return f.name }

func (f field) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Map {
		return base.MapIndex(reflect.ValueOf(f.name))
	}
	return reflect.Value{}
}

// parquetCodec maps the compression option to a parquet-go codec.
func parquetCodec(name string) (compress.Codec, error) {
	switch strings.ToLower(name) {
	case "", "snappy":
		return &snappy.Codec{}, nil
	case "zstd":
		return &zstd.Codec{Level: zstd.DefaultLevel, Concurrency: 1}, nil
	case "gzip":
		return &gzip.Codec{Level: gzip.DefaultCompression}, nil
	case "none", "uncompressed":
		return &uncompressed.Codec{}, nil
	}
	return nil, fmt.Errorf("parquet compression %q: want snappy, zstd, gzip or none", name)
}
