package prefix

import (
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// TestDeadLetterPattern: the keys DeadLetterKey makes match the pattern,
// with the error output type captured, for plain and expression prefixes;
// another stream's keys and data keys do not.
func TestDeadLetterPattern(t *testing.T) {
	at := time.Date(2026, 12, 3, 14, 5, 6, 0, time.UTC)
	for _, tc := range []struct{ prefix, errPrefix, root string }{
		{"", "errors/", "errors/"},
		{"data/", "", "data/"},
		{"d/!{timestamp:yyyy}/", "e/!{firehose:error-output-type}/!{timestamp:yyyy-MM-dd'T'HH}/", "e/"},
		{"d/!{timestamp:yyyy}/", "!{firehose:random-string}/!{firehose:error-output-type}/x/", ""},
		{"d/!{timestamp:yyyy}/", "!{timestamp:yyyy}/!{firehose:error-output-type}/x-!{firehose:error-output-type}/", ""},
	} {
		s, err := Parse(tc.prefix, tc.errPrefix, Options{})
		if err != nil {
			t.Fatalf("%q, %q: %v", tc.prefix, tc.errPrefix, err)
		}
		re, root := s.DeadLetterPattern("clicks")
		if root != tc.root {
			t.Errorf("%q: root %q, want %q", tc.errPrefix, root, tc.root)
		}
		for _, typ := range []string{"processing-failed", "http-endpoint-failed"} {
			key, err := s.DeadLetterKey("clicks", typ, at, pipeline.BatchID{First: 10, End: 20})
			if err != nil {
				t.Fatal(err)
			}
			m := re.FindStringSubmatch(key)
			if m == nil || m[re.SubexpIndex("type")] != typ {
				t.Errorf("%q: key %q not matched with type %s by %s", tc.errPrefix, key, typ, re)
			}
			other, _ := s.DeadLetterKey("clicks2", typ, at, pipeline.BatchID{First: 10, End: 20})
			if re.MatchString(other) {
				t.Errorf("%q: another stream's key %q matched", tc.errPrefix, other)
			}
		}
	}
}
