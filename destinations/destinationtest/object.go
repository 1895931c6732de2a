package destinationtest

// The harness of object writers (package destinations/object) over any
// store: a store's tests give how to build a writer and how to list what
// the store holds, and get a Harness that reads data objects, backups and
// dead letters back in Firehose's layout.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

// ObjectStore is what ObjectHarness needs of a store's tests.
type ObjectStore struct {
	// New returns a writer of stream with options o, over the store List
	// reads. The suite closes it.
	New func(t *testing.T, o object.Options, stream string) *object.Writer
	// List returns every object of the store: key → raw content.
	List func(t *testing.T) map[string][]byte
	// Failures are the store's real failures (see Failure).
	Failures []Failure
}

// ObjectErrorPrefix is the error_output_prefix of the writers the harness
// builds when the options give none with expressions.
const ObjectErrorPrefix = "errors/"

// ObjectHarness returns the conformance harness of writers with options o. o's
// error_output_prefix must be empty or plain (dead letters are read back
// from <error prefix><output-type>/...).
func ObjectHarness(s ObjectStore, o object.Options) Harness {
	if o.ErrorOutputPrefix == "" {
		o.ErrorOutputPrefix = ObjectErrorPrefix
	}
	h := Harness{
		New: func(t *testing.T, stream string) pipeline.Destination { return s.New(t, o, stream) },
		Read: func(t *testing.T, stream string) [][]byte {
			return readData(t, s.List(t), o.ErrorOutputPrefix, stream)
		},
		Failures: s.Failures,
		ErrorOutput: &ErrorOutput{
			New: func(t *testing.T, stream string) pipeline.ErrorOutput { return s.New(t, o, stream) },
			ReadDeadLetters: func(t *testing.T, stream string) []pipeline.DeadLetter {
				return readDeadLetters(t, s.List(t), o.ErrorOutputPrefix, stream)
			},
			ReadBackups: func(t *testing.T, stream string) [][]byte {
				return readData(t, s.List(t), o.ErrorOutputPrefix, stream)
			},
		},
	}
	if o.AppendNewline {
		h.Expect = func(b pipeline.Batch) [][]byte {
			var buf bytes.Buffer
			for _, r := range b.Records {
				buf.Write(r.Data)
				buf.WriteByte('\n')
			}
			return [][]byte{buf.Bytes()}
		}
	}
	// Partial failure: records without the partition key are refused.
	po := o
	po.Prefix = o.Prefix + "part/!{partitionKeyFromQuery:k}/"
	po.ErrorOutputPrefix = o.ErrorOutputPrefix + "!{firehose:error-output-type}/"
	h.Partial = &Partial{
		New: func(t *testing.T, stream string) pipeline.Destination { return s.New(t, po, stream) },
		Batch: func(stream string) (pipeline.Batch, []int, [][]byte) {
			b := NewBatch(stream, 0, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
				[]byte("a1;"), []byte("no key;"), []byte("b1;"), []byte("a2;"), []byte("no key either;"))
			for i, k := range []string{"a", "", "b", "a", ""} {
				if k != "" {
					b.Records[i].Keys = map[string]string{"partitionKeyFromQuery:k": k}
				}
			}
			sep := ""
			if o.AppendNewline {
				sep = "\n"
			}
			return b, []int{1, 4}, [][]byte{[]byte("a1;" + sep + "a2;" + sep), []byte("b1;" + sep)}
		},
	}
	return h
}

// DecodeObject returns an object's content, decompressed by its extension.
func DecodeObject(t testing.TB, key string, data []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch {
	case strings.HasSuffix(key, ".gz"):
		r, err = gzip.NewReader(bytes.NewReader(data))
	case strings.HasSuffix(key, ".zst"):
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(data))
		if err == nil {
			defer d.Close()
			r = d
		}
	default:
		return data
	}
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return out
}

// literal is the part of a prefix before its first expression.
func literal(p string) string {
	if i := strings.Index(p, "!{"); i >= 0 {
		return p[:i]
	}
	return p
}

// ofStream reports whether key names an object of stream.
func ofStream(key, stream string) bool {
	name := key[strings.LastIndex(key, "/")+1:]
	return strings.HasPrefix(name, stream+"-1-")
}

func readData(t *testing.T, objs map[string][]byte, errPrefix, stream string) [][]byte {
	var units [][]byte
	for _, key := range slices.Sorted(maps.Keys(objs)) {
		if ofStream(key, stream) && !strings.HasPrefix(key, literal(errPrefix)) {
			units = append(units, DecodeObject(t, key, objs[key]))
		}
	}
	return units
}

// readDeadLetters decodes the error records of stream under a plain
// error prefix: <prefix><output-type>/....
func readDeadLetters(t *testing.T, objs map[string][]byte, errPrefix, stream string) []pipeline.DeadLetter {
	var out []pipeline.DeadLetter
	for key, data := range objs {
		rest, ok := strings.CutPrefix(key, errPrefix)
		if !ok || !ofStream(key, stream) {
			continue
		}
		outputType, _, _ := strings.Cut(rest, "/")
		for line := range strings.Lines(string(data)) {
			var r object.ErrorRecord
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: error record %q: %v", key, line, err)
			}
			raw, err := base64.StdEncoding.DecodeString(r.RawData)
			if err != nil {
				t.Fatalf("%s: rawData %q: %v", key, r.RawData, err)
			}
			out = append(out, pipeline.DeadLetter{
				Record:   pipeline.Record{Data: raw, Arrived: time.UnixMilli(r.ArrivalTimestamp)},
				Attempts: r.AttemptsMade, Code: r.ErrorCode, Message: r.ErrorMessage, OutputType: outputType,
			})
		}
	}
	return out
}

var endingRE = regexp.MustCompile(`"attemptEndingTimestamp":(\d+)`)

// FixEnding checks that every attemptEndingTimestamp of the error records
// in data is within [before, after] (the window of the writes), and
// replaces it with want so that the records can be compared exactly.
func FixEnding(t testing.TB, data []byte, before, after time.Time, want int64) string {
	t.Helper()
	return endingRE.ReplaceAllStringFunc(string(data), func(m string) string {
		ms, _ := strconv.ParseInt(endingRE.FindStringSubmatch(m)[1], 10, 64)
		if ms < before.UnixMilli() || ms > after.UnixMilli() {
			t.Errorf("attemptEndingTimestamp %d outside the writes' window [%d, %d]", ms, before.UnixMilli(), after.UnixMilli())
		}
		return fmt.Sprintf(`"attemptEndingTimestamp":%d`, want)
	})
}
