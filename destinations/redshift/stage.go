package redshift

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/destinations/format/compress"
	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

// objectKind is the kind of object in the seed of staged names (see
// prefix.ObjectSeed).
const objectKind = "redshift"

// dataExt ends the names of staged data objects (GZIP).
const dataExt = ".gz"

// keys are the S3 keys of one batch's objects.
type keys struct {
	data     string // <prefix><yyyy/MM/dd/HH/><name>.gz
	manifest string // <prefix><manifest_prefix><yyyy/MM/dd/HH/><name>
	errors   string // <prefix><errors_prefix><yyyy/MM/dd/HH/><name>
}

// Keys returns the S3 keys of the data object, the manifest and the
// manifest written when the batch is given up on, for batch id of stream
// whose oldest staged record arrived at oldest. They derive from the
// batch identity, so a redelivery overwrites the same objects:
//
//	<prefix><yyyy/MM/dd/HH/><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>.gz
//	<prefix><manifest_prefix><yyyy/MM/dd/HH/><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>
//	<prefix><errors_prefix><yyyy/MM/dd/HH/><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>
//
// The time is UTC.
func (c *Config) Keys(stream string, id pipeline.BatchID, oldest time.Time) (data, manifest, errs string) {
	k := c.keys(stream, id, oldest)
	return k.data, k.manifest, k.errors
}

func (c *Config) keys(stream string, id pipeline.BatchID, oldest time.Time) keys {
	t := oldest.UTC()
	dir := t.Format("2006/01/02/15/")
	name := stream + "-" + prefix.StreamVersion + "-" + t.Format("2006-01-02-15-04-05") + "-" +
		prefix.ObjectUUID(prefix.ObjectSeed(stream, objectKind, id, ""))
	return keys{
		data:     c.prefix + dir + name + dataExt,
		manifest: c.prefix + c.manifests + dir + name,
		errors:   c.prefix + c.errors + dir + name,
	}
}

// URL is the s3:// URL of key in the staging bucket.
func (c *Config) URL(key string) string { return "s3://" + c.store.Bucket + "/" + key }

// Manifest is a Redshift COPY manifest.
type Manifest struct {
	Entries []ManifestEntry `json:"entries"`
}

// ManifestEntry is one object of a manifest.
type ManifestEntry struct {
	URL       string `json:"url"`
	Mandatory bool   `json:"mandatory"`
}

// ManifestJSON is the manifest of a batch staged as dataKey:
// {"entries":[{"url":"s3://bucket/<dataKey>","mandatory":true}]}.
func (c *Config) ManifestJSON(dataKey string) []byte {
	b, err := json.Marshal(Manifest{Entries: []ManifestEntry{{URL: c.URL(dataKey), Mandatory: true}}})
	if err != nil {
		panic(fmt.Sprintf("redshift: encoding a manifest: %v", err)) // strings and a bool always encode
	}
	return b
}

// checkRecord tells whether a record can be staged: a single JSON object
// in UTF-8 (COPY refuses invalid UTF-8, and one bad record would fail the
// whole batch's COPY).
func checkRecord(data []byte) error {
	t := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(t) == 0:
		return errors.New("empty record, want a JSON object")
	case !utf8.Valid(data):
		return errors.New("not valid UTF-8")
	case t[0] != '{':
		return fmt.Errorf("not a JSON object (starts with %q)", t[0])
	case !json.Valid(data):
		var v json.RawMessage
		err := json.Unmarshal(data, &v)
		if err == nil {
			err = errors.New("invalid")
		}
		return fmt.Errorf("not valid JSON: %v", err)
	}
	return nil
}

// appendRecord appends a checked record as one line of the staged object:
// the compacted JSON object, or the CSV row of the configured columns.
func (c *Config) appendRecord(dst, data []byte) ([]byte, error) {
	if !c.csv {
		buf := bytes.NewBuffer(dst)
		if err := json.Compact(buf, data); err != nil {
			return dst, err
		}
		return append(buf.Bytes(), '\n'), nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return dst, err
	}
	for i, col := range c.columns {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendField(dst, fields[col]); err != nil {
			return dst, fmt.Errorf("key %q: %w", col, err)
		}
	}
	return append(dst, '\n'), nil
}

// appendField appends one CSV field: nothing for null or a missing key
// (an empty unquoted field, NULL with EMPTYASNULL), a string quoted, a
// number as its JSON text, true or false, an object or array as its
// compact JSON text, quoted.
func appendField(dst []byte, v json.RawMessage) ([]byte, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return dst, nil
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return dst, err
		}
		return appendQuoted(dst, s), nil
	case '{', '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return dst, err
		}
		return appendQuoted(dst, buf.String()), nil
	}
	return append(dst, v...), nil // number, true, false
}

// appendQuoted appends s as a quoted CSV field, quotes doubled.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = append(dst, strings.ReplaceAll(s, `"`, `""`)...)
	return append(dst, '"')
}

// gzipCodec compresses the staged data objects.
var gzipCodec = mustGzip()

func mustGzip() compress.Codec {
	c, err := compress.Parse(compress.GZIP)
	if err != nil {
		panic(err)
	}
	return c
}

// stageData writes the records at indices valid of recs as the GZIP
// object key. The object is streamed: memory is the store's part buffers
// and one encoded record.
func (d *Destination) stageData(ctx context.Context, key string, recs []pipeline.Record, valid []int) error {
	size := 0
	for _, i := range valid {
		size += len(recs[i].Data) + 1
	}
	contentType := "application/x-ndjson"
	if d.cfg.csv {
		contentType = "text/csv"
	}
	// No Content-Encoding: readers (COPY) get the GZIP bytes as stored.
	obj, err := d.store.Create(ctx, key, object.Meta{ContentType: contentType, SizeHint: size})
	if err != nil {
		return err
	}
	defer obj.Abort() // does nothing once committed
	zw, err := gzipCodec.NewWriter(obj)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	var line []byte
	for _, i := range valid {
		if line, err = d.cfg.appendRecord(line[:0], recs[i].Data); err != nil {
			return fmt.Errorf("encoding record %d: %w", i, err)
		}
		if _, err := zw.Write(line); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return obj.Commit()
}

// putSmall writes a small object (a manifest) whole.
func (d *Destination) putSmall(ctx context.Context, key string, body []byte) error {
	obj, err := d.store.Create(ctx, key, object.Meta{ContentType: "application/json", SizeHint: len(body)})
	if err != nil {
		return err
	}
	defer obj.Abort()
	if _, err := obj.Write(body); err != nil {
		return err
	}
	return obj.Commit()
}
