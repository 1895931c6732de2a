// Package parquet converts JSON records to Apache Parquet, Firehose's
// record format conversion (OpenXJsonSerDe in, ParquetSerDe out) with the
// schema written in the YAML configuration instead of an AWS Glue table.
//
// Each record holds one JSON object, or several concatenated or
// newline-separated ones ({..}{..}); every object is a row. A record that
// does not fit the schema is refused whole with a *pipeline.CodedError of
// output type format-conversion-failed (see errors.go) and the object stays
// valid without it. Row groups are flushed as they fill (RowGroupRows or
// RowGroupBytes of input), so memory is bounded by one row group.
package parquet

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/pipeline"
)

// Column types.
const (
	TypeString    = "string"
	TypeInt32     = "int32"
	TypeInt64     = "int64"
	TypeFloat     = "float"
	TypeDouble    = "double"
	TypeBoolean   = "boolean"
	TypeTimestamp = "timestamp"
	TypeDate      = "date"
	TypeDecimal   = "decimal"
	TypeList      = "list"
	TypeStruct    = "struct"
	TypeJSON      = "json"
)

// Timestamp units.
const (
	UnitMillis = "millis"
	UnitMicros = "micros"
)

// Schema is the Parquet schema of a destination: its columns in file order.
type Schema struct {
	Columns []Column `yaml:"columns"`
}

// Column is one column (or a struct field, or a list's items).
type Column struct {
	// Name is the Parquet column name (not set on a list's items).
	Name string `yaml:"name,omitempty"`
	// Type is one of the Type* constants.
	Type string `yaml:"type"`
	// Source locates the value in the JSON object (in a struct field: in
	// the struct's object): a field name, a dotted path ("device.os") or a
	// JSON path ("$.a.b[0]", "$['key.with.dots']"). Default: Name. Keys are
	// matched exactly, then case-insensitively (as OpenXJsonSerDe does).
	Source string `yaml:"source,omitempty"`
	// Required columns refuse records where the value is missing or null;
	// other columns are nullable.
	Required bool `yaml:"required,omitempty"`
	// Unit of a timestamp column: millis (default) or micros.
	Unit string `yaml:"unit,omitempty"`
	// Precision (1..38) and Scale (0..Precision) of a decimal column.
	Precision int `yaml:"precision,omitempty"`
	Scale     int `yaml:"scale,omitempty"`
	// Items is the element type of a list column.
	Items *Column `yaml:"items,omitempty"`
	// Fields are the fields of a struct column.
	Fields []Column `yaml:"fields,omitempty"`
}

// Options are the writer settings of the parquet block.
type Options struct {
	// Compression of column pages: snappy (default), zstd, gzip, none.
	Compression string `yaml:"compression,omitempty"`
	// RowGroupRows flushes a row group after this many rows (default
	// 1,000,000).
	RowGroupRows int64 `yaml:"row_group_rows,omitempty"`
	// RowGroupBytes flushes a row group once the JSON input converted into
	// it reaches this size (default 64 MiB). It bounds the writer's memory.
	RowGroupBytes int64 `yaml:"row_group_bytes,omitempty"`
}

// Config is the whole parquet block: the schema and the options side by side.
type Config struct {
	Schema  `yaml:",inline"`
	Options `yaml:",inline"`
}

// Defaults.
const (
	DefaultRowGroupRows  = 1_000_000
	DefaultRowGroupBytes = 64 << 20
)

// Validate reports every problem of the schema, joined, each as a
// *pipeline.OptionError keyed by its path in the parquet block
// ("columns[2].type", "columns[0].fields[1].name").
func (s Schema) Validate() error {
	var errs []error
	if len(s.Columns) == 0 {
		errs = append(errs, pipeline.OptionErrorf("columns", "schema has no columns"))
	}
	validateFields(s.Columns, "columns", &errs)
	return errors.Join(errs...)
}

// Validate reports every problem of the options, joined, each as a
// *pipeline.OptionError.
func (o Options) Validate() error {
	var errs []error
	if _, err := parquetCodec(o.Compression); err != nil {
		errs = append(errs, &pipeline.OptionError{Key: "compression", Err: err})
	}
	if o.RowGroupRows < 0 {
		errs = append(errs, pipeline.OptionErrorf("row_group_rows", "%d is negative", o.RowGroupRows))
	}
	if o.RowGroupBytes < 0 {
		errs = append(errs, pipeline.OptionErrorf("row_group_bytes", "%d is negative", o.RowGroupBytes))
	}
	return errors.Join(errs...)
}

// Validate reports every problem of the schema and the options.
func (c Config) Validate() error {
	return errors.Join(c.Schema.Validate(), c.Options.Validate())
}

// validateFields checks the columns (or struct fields) cols found at key
// (e.g. "columns", "columns[3].fields").
func validateFields(cols []Column, key string, errs *[]error) {
	seen := map[string]bool{}
	for i := range cols {
		c := &cols[i]
		at := fmt.Sprintf("%s[%d]", key, i)
		bad := func(sub, format string, args ...any) {
			*errs = append(*errs, pipeline.OptionErrorf(at+sub, "%s", fmt.Sprintf(format, args...)))
		}
		switch {
		case c.Name == "":
			bad(".name", "name is required")
		case strings.ContainsAny(c.Name, ".,;{}()[]=\"'` \t\n\r"):
			bad(".name", "name %q holds a character column names cannot use (.,;{}()[]= quotes or whitespace); keep the JSON key in source", c.Name)
		case seen[strings.ToLower(c.Name)]:
			bad(".name", "duplicate column name %q (names are case-insensitive)", c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
		if c.Source != "" {
			if _, err := parsePath(c.Source); err != nil {
				bad(".source", "%v", err)
			}
		}
		validateType(c, at, errs)
	}
}

// validateType checks the type of the column at key.
func validateType(c *Column, key string, errs *[]error) {
	bad := func(sub, format string, args ...any) {
		*errs = append(*errs, pipeline.OptionErrorf(key+sub, "%s", fmt.Sprintf(format, args...)))
	}
	if c.Type != TypeTimestamp && c.Unit != "" {
		bad(".unit", "unit applies to timestamp columns only")
	}
	if c.Type != TypeDecimal && (c.Precision != 0 || c.Scale != 0) {
		bad(".precision", "precision and scale apply to decimal columns only")
	}
	if c.Type != TypeList && c.Items != nil {
		bad(".items", "items applies to list columns only")
	}
	if c.Type != TypeStruct && len(c.Fields) > 0 {
		bad(".fields", "fields apply to struct columns only")
	}
	switch c.Type {
	case TypeString, TypeInt32, TypeInt64, TypeFloat, TypeDouble, TypeBoolean, TypeDate, TypeJSON:
	case TypeTimestamp:
		if c.Unit != "" && c.Unit != UnitMillis && c.Unit != UnitMicros {
			bad(".unit", "unit %q: want millis or micros", c.Unit)
		}
	case TypeDecimal:
		if c.Precision < 1 || c.Precision > 38 {
			bad(".precision", "decimal precision %d: want 1..38", c.Precision)
		}
		if c.Scale < 0 || c.Scale > c.Precision {
			bad(".scale", "decimal scale %d: want 0..precision", c.Scale)
		}
	case TypeList:
		if c.Items == nil {
			bad(".items", "list needs items")
			return
		}
		if c.Items.Name != "" || c.Items.Source != "" {
			bad(".items", "list items take neither name nor source")
		}
		validateType(c.Items, key+".items", errs)
	case TypeStruct:
		if len(c.Fields) == 0 {
			bad(".fields", "struct needs fields")
		}
		validateFields(c.Fields, key+".fields", errs)
	case "":
		bad(".type", "type is required")
	default:
		bad(".type", "unknown type %q (want string, int32, int64, float, double, boolean, timestamp, date, decimal, list, struct or json)", c.Type)
	}
}

// YAML renders the schema as a `columns:` block to paste under a
// destination's parquet block.
func (s Schema) YAML() []byte {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		// Schema holds only strings, ints, bools and slices of itself.
		panic(fmt.Sprintf("parquet: encoding schema: %v", err))
	}
	_ = enc.Close()
	return b.Bytes()
}
