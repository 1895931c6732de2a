package parquet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/parquet-go/parquet-go"
	pqcompress "github.com/parquet-go/parquet-go/compress"
	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/pipeline"
)

// ContentType of Parquet objects.
const ContentType = "application/vnd.apache.parquet"

// Format writes records as Parquet objects.
type Format struct {
	schema  *parquet.Schema
	cols    []*column
	nleaves int
	codec   pqcompress.Codec
	rows    int64
	bytes   int64
}

var _ format.Format = (*Format)(nil)

// New validates the configuration and returns the format. Validation
// problems are returned as Validate reports them (joined
// *pipeline.OptionErrors keyed inside the parquet block).
func New(cfg Config) (*Format, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	schema, cols, n, err := compileSchema(cfg.Schema)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	codec, err := parquetCodec(cfg.Compression)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	f := &Format{schema: schema, cols: cols, nleaves: n, codec: codec,
		rows: cfg.RowGroupRows, bytes: cfg.RowGroupBytes}
	if f.rows == 0 {
		f.rows = DefaultRowGroupRows
	}
	if f.bytes == 0 {
		f.bytes = DefaultRowGroupBytes
	}
	return f, nil
}

// Ext is ".parquet" (compression is inside the file).
func (f *Format) Ext() string { return ".parquet" }

// ContentType is application/vnd.apache.parquet.
func (f *Format) ContentType() string { return ContentType }

// ContentEncoding is empty: Parquet compresses its pages itself.
func (f *Format) ContentEncoding() string { return "" }

// ParquetSchema is the file schema, e.g. for printing.
func (f *Format) ParquetSchema() *parquet.Schema { return f.schema }

// NewWriter starts a Parquet file written to w.
func (f *Format) NewWriter(w io.Writer) (format.ObjectWriter, error) {
	pw := parquet.NewGenericWriter[map[string]any](w, f.schema,
		parquet.Compression(f.codec),
		parquet.MaxRowsPerRowGroup(f.rows),
		parquet.CreatedBy("sluice", "", ""),
	)
	return &writer{f: f, pw: pw, buckets: make([][]parquet.Value, f.nleaves)}, nil
}

type writer struct {
	f       *Format
	pw      *parquet.GenericWriter[map[string]any]
	buckets [][]parquet.Value // values of the row being built, per leaf
	rows    []parquet.Row     // rows of the record being converted
	pending int64             // input bytes in the current row group
	inGroup int64             // rows in the current row group
	err     error
	closed  bool

	jbuf                   bytes.Buffer
	rat                    big.Rat
	bigN, bigR, bigD, bigA big.Int
}

var errClosed = errors.New("parquet: object writer closed")

// Write converts the record's JSON object(s) to rows and writes them; a
// record that does not fit is refused whole (CodedError) and nothing of it
// is written.
func (w *writer) Write(rec *pipeline.Record) error {
	if w.closed {
		return errClosed
	}
	if w.err != nil {
		return w.err
	}
	w.rows = w.rows[:0]
	dec := json.NewDecoder(bytes.NewReader(rec.Data))
	dec.UseNumber()
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			return recordError(CodeParseError, fmt.Errorf("record is not JSON: %w", err))
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return recordError(CodeParseError, fmt.Errorf("record holds %s, not a JSON object", describe(v)))
		}
		row, err := w.row(obj)
		if err != nil {
			return err
		}
		w.rows = append(w.rows, row)
	}
	if len(w.rows) == 0 {
		return recordError(CodeParseError, errors.New("record holds no JSON object"))
	}
	if _, err := w.pw.WriteRows(w.rows); err != nil {
		w.err = fmt.Errorf("parquet: write rows: %w", err)
		return w.err
	}
	w.pending += int64(len(rec.Data))
	w.inGroup += int64(len(w.rows))
	if w.pending >= w.f.bytes && w.inGroup < w.f.rows {
		if err := w.pw.Flush(); err != nil {
			w.err = fmt.Errorf("parquet: flush row group: %w", err)
			return w.err
		}
		w.pending, w.inGroup = 0, 0
	} else if w.inGroup >= w.f.rows { // the writer flushed it
		w.pending, w.inGroup = 0, 0
	}
	return nil
}

// row converts one object into a Parquet row (values in column order).
func (w *writer) row(obj map[string]any) (parquet.Row, error) {
	for i := range w.buckets {
		w.buckets[i] = w.buckets[i][:0]
	}
	for _, c := range w.f.cols {
		if err := w.shred(c, lookup(obj, c.source), 0, 0); err != nil {
			return nil, err
		}
	}
	n := 0
	for _, b := range w.buckets {
		n += len(b)
	}
	row := make(parquet.Row, 0, n)
	for _, b := range w.buckets {
		row = append(row, b...)
	}
	return row, nil
}

// shred appends the values of v for column c (Dremel encoding): r is the
// repetition level of the first value, d the definition level of c's
// parent.
func (w *writer) shred(c *column, v any, r, d int) error {
	if v == nil {
		if !c.optional {
			return recordError(CodeMissingRequiredField, fmt.Errorf("required column %s is missing or null", c.path))
		}
		w.nulls(c, r, d)
		return nil
	}
	if c.optional {
		d++
	}
	switch c.kind {
	case kStruct:
		obj, ok := v.(map[string]any)
		if !ok {
			return malformed(c, v, "an object")
		}
		for _, f := range c.fields {
			if err := w.shred(f, lookup(obj, f.source), r, d); err != nil {
				return err
			}
		}
	case kList:
		arr, ok := v.([]any)
		if !ok {
			return malformed(c, v, "an array")
		}
		if len(arr) == 0 {
			w.nulls(c.elem, r, d)
			return nil
		}
		for i, e := range arr {
			ri := r
			if i > 0 {
				ri = c.elem.repLevel
			}
			if err := w.shred(c.elem, e, ri, d+1); err != nil {
				return err
			}
		}
	default:
		val, err := w.leafValue(c, v)
		if err != nil {
			return err
		}
		w.buckets[c.leaf] = append(w.buckets[c.leaf], val.Level(r, d, c.leaf))
	}
	return nil
}

// nulls appends a null for every leaf under c.
func (w *writer) nulls(c *column, r, d int) {
	for l := c.first; l < c.first+c.leaves; l++ {
		w.buckets[l] = append(w.buckets[l], parquet.NullValue().Level(r, d, l))
	}
}

// Close writes the last row group and the footer; it does not close the
// underlying writer.
func (w *writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if err := w.pw.Close(); err != nil {
		w.err = fmt.Errorf("parquet: close: %w", err)
	}
	return w.err
}
