package prefix

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// fuzzZones are the CustomTimeZones the fuzzer picks from: UTC, half-hour
// and extreme offsets, one west of UTC.
var fuzzZones = []string{"", "Asia/Kolkata", "America/St_Johns", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin"}

// The instants rendered: years 2 to 9998 (maxLen assumes years up to
// 9999; a day of margin each side keeps every zone's local year inside).
var (
	fuzzTimeLo = time.Date(2, 1, 2, 0, 0, 0, 0, time.UTC).Unix()
	fuzzTimeHi = time.Date(9998, 12, 30, 0, 0, 0, 0, time.UTC).Unix()
)

// FuzzParse: Parse never panics and returns a Spec or an error joining
// *Violations (each with its field and rule). A Spec renders without
// panicking, deterministically (the same key twice for the same values),
// for any instant of years up to 9999:
//   - without partition keys, Key never fails and fits in 512 characters
//     (Parse rejects a Prefix that could evaluate longer), and no
//     timestamp expression renders longer than the maxLen that check uses;
//   - with partition keys, Key fails with ErrMissingKey when the keys are
//     missing, and otherwise renders every key's value or fails with
//     ErrPrefixTooLong;
//   - ErrorKey contains the error output type, or fails with
//     ErrPrefixTooLong; DeadLetterKey and ObjectName do not panic and are
//     deterministic.
func FuzzParse(f *testing.F) {
	for _, s := range []struct {
		prefix, errPrefix string
		dp                bool
	}{
		{"", "", false},
		{"logs", "", false},
		{"logs/", "errors/", false},
		{"logs/!{timestamp:yyyy/MM/dd}/!{partitionKeyFromQuery:k}/", "errors/!{firehose:error-output-type}/", true},
		{"!{partitionKeyFromLambda:a}/!{partitionKeyFromQuery:b}/!{partitionKeyFromLambda:a}/", "e/!{firehose:error-output-type}/!{timestamp:yyyy}/", true},
		{"x/!{timestamp:yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSSXXX}/!{firehose:random-string}/", "e/!{firehose:error-output-type}/!{firehose:random-string}", false},
		{"!{timestamp:uuuu QQQQ EEEE MMMM GGGG a hh kk KK A D w YYYY ZZZZZ xxx zzz}", "e!{firehose:error-output-type}", false},
		{"!{timestamp:yyyyyyyyyyyyyyyyyyy}", "!{firehose:error-output-type}", false},
		{"!{timestamp:'quoted ''text'''}[optional]", "!{firehose:error-output-type}", false},
		{"!{timestamp:" + strings.Repeat("MMMM", 60) + "}", "!{firehose:error-output-type}", false},
		{strings.Repeat("a", 512), "", false},
		{strings.Repeat("a", 1025), "", false},
		{"!{", "!{firehose:nope}", false},
		{"!{firehose:error-output-type}", "x", false},
		{"!{partitionKeyFromQuery:}", "", true},
		{"!{timestamp:}", "!{unknown:x}", false},
	} {
		f.Add(s.prefix, s.errPrefix, s.dp, uint8(0), int64(1_700_000_000))
		f.Add(s.prefix, s.errPrefix, s.dp, uint8(3), int64(-1))
	}
	var zones []*time.Location
	for _, name := range fuzzZones {
		loc, err := LoadTimeZone(name)
		if err != nil {
			f.Fatal(err)
		}
		zones = append(zones, loc)
	}
	f.Fuzz(func(t *testing.T, prefix, errPrefix string, dp bool, zone uint8, sec int64) {
		loc := zones[int(zone)%len(zones)]
		s, err := Parse(prefix, errPrefix, Options{DynamicPartitioning: dp, TimeZone: loc})
		if err != nil {
			if s != nil {
				t.Fatalf("a Spec and an error: %v", err)
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %T is not a join of violations: %v", err, err)
			}
			for _, e := range joined.Unwrap() {
				v, ok := e.(*Violation)
				if !ok || v.Rule == "" || v.Field != "Prefix" && v.Field != "ErrorOutputPrefix" && v.Field != "FileExtension" {
					t.Fatalf("not a violation with a field and a rule: %#v", e)
				}
			}
			return
		}
		if s == nil {
			t.Fatal("neither a Spec nor an error")
		}

		span := fuzzTimeHi - fuzzTimeLo
		tm := time.Unix(fuzzTimeLo+(sec%span+span)%span, (sec&0x3fffffff)%1e9)
		local := tm.In(loc)
		for _, segs := range [][]segment{s.prefix, s.errPrefix} {
			for _, sg := range segs {
				if sg.kind != segTime {
					continue
				}
				if got := sg.layout.appendTime(nil, local); len(got) > sg.layout.maxLen() {
					t.Fatalf("layout %+v renders %q (%d characters) at %v, maxLen %d", sg.layout, got, len(got), local, sg.layout.maxLen())
				}
			}
		}

		keys := map[string]string{}
		for i, k := range s.PartitionKeys() {
			if !strings.HasPrefix(k, "partitionKeyFromQuery:") && !strings.HasPrefix(k, "partitionKeyFromLambda:") {
				t.Fatalf("partition key %q", k)
			}
			keys[k] = "v" + strconv.Itoa(i)
		}
		v := Values{Time: tm, Keys: keys, Seed: "stream\x00data\x00seed"}
		key, err := s.Key(v)
		key2, err2 := s.Key(v)
		if key != key2 || (err == nil) != (err2 == nil) {
			t.Fatalf("Key twice: %q %v, then %q %v", key, err, key2, err2)
		}
		switch {
		case len(keys) == 0 && err != nil:
			t.Fatalf("a Prefix without partition keys fails to render at %v: %v", tm, err)
		case err != nil && !errors.Is(err, ErrPrefixTooLong):
			t.Fatalf("Key: %v", err)
		case err == nil && len(key) > MaxEvaluatedLength:
			t.Fatalf("Key is %d characters", len(key))
		case err == nil:
			for _, val := range keys {
				if !strings.Contains(key, val) {
					t.Fatalf("Key %q does not hold the value %q", key, val)
				}
			}
		}
		if len(keys) > 0 {
			if _, err := s.Key(Values{Time: tm}); !errors.Is(err, ErrMissingKey) {
				t.Fatalf("Key without the partition keys: %v", err)
			}
		}

		const outputType = pipeline.OutputProcessingFailed
		ekey, err := s.ErrorKey(outputType, v)
		ekey2, err2 := s.ErrorKey(outputType, v)
		if ekey != ekey2 || (err == nil) != (err2 == nil) {
			t.Fatalf("ErrorKey twice: %q %v, then %q %v", ekey, err, ekey2, err2)
		}
		switch {
		case err != nil && !errors.Is(err, ErrPrefixTooLong):
			t.Fatalf("ErrorKey: %v", err)
		case err == nil && (!strings.Contains(ekey, outputType) || len(ekey) > MaxEvaluatedLength):
			t.Fatalf("ErrorKey %q", ekey)
		}
		id := pipeline.BatchID{First: 5, End: 9}
		dl, err := s.DeadLetterKey("stream", outputType, tm, id)
		dl2, err2 := s.DeadLetterKey("stream", outputType, tm, id)
		if dl != dl2 || (err == nil) != (err2 == nil) {
			t.Fatalf("DeadLetterKey twice: %q %v, then %q %v", dl, err, dl2, err2)
		}
		if name := s.ObjectName("stream", tm, ObjectUUID("seed")); name != s.ObjectName("stream", tm, ObjectUUID("seed")) {
			t.Fatal("ObjectName is not deterministic")
		}
	})
}
