package prefix

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// arrival is the oldest record's arrival in the contract's real example
// key 2019/10/01/09/seong-firehose-batch-limit-test-1-2019-10-01-09-20-18-….
var arrival = time.Date(2019, 10, 1, 9, 20, 18, 0, time.UTC)

func mustParse(t *testing.T, p, e string, o Options) *Spec {
	t.Helper()
	s, err := Parse(p, e, o)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", p, e, err)
	}
	return s
}

var randomRE = `[0-9a-f]{11}`

// TestKeys evaluates every expression, and the default time path (rule 1),
// for a fixed arrival time. want is a regular expression only where a
// random string appears; everything else is matched literally.
func TestKeys(t *testing.T) {
	tokyo, err := LoadTimeZone("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{
		"partitionKeyFromQuery:customer_id": "c-42",
		"partitionKeyFromLambda:year":       "2024",
		"partitionKeyFromQuery:empty":       "",
	}
	for _, tc := range []struct {
		name, prefix, errPrefix string
		dp                      bool
		tz                      *time.Location
		want                    string // exact, with {R} standing for a random string
		wantErr                 string // ErrorKey("processing-failed"), same convention
	}{
		{"empty prefix gets the time path", "", "", false, nil,
			"2019/10/01/09/", "processing-failed/2019/10/01/09/"},
		{"rule 1: appended directly, no slash", "logs", "", false, nil,
			"logs2019/10/01/09/", "logsprocessing-failed/2019/10/01/09/"},
		{"rule 7: plain error prefix", "logs/", "errors/", false, nil,
			"logs/2019/10/01/09/", "errors/processing-failed/2019/10/01/09/"},
		{"timestamp yyyy-MM-dd", "d=!{timestamp:yyyy-MM-dd}/", "e/!{firehose:error-output-type}/", false, nil,
			"d=2019-10-01/", "e/processing-failed/"},
		{"several timestamps, one instant", "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}:!{timestamp:mm}:!{timestamp:ss}/", "e/!{firehose:error-output-type}/", false, nil,
			"2019/10/01/09:20:18/", "e/processing-failed/"},
		{"quoted literals", "!{timestamp:'year='yyyy'/month='MM'/'}", "e/!{firehose:error-output-type}", false, nil,
			"year=2019/month=10/", "e/processing-failed"},
		{"CustomTimeZone Asia/Tokyo", "", "", false, tokyo,
			"2019/10/01/18/", "processing-failed/2019/10/01/18/"},
		{"CustomTimeZone in expressions", "!{timestamp:yyyy/MM/dd/HH}/", "err/!{timestamp:HH}/!{firehose:error-output-type}/", false, tokyo,
			"2019/10/01/18/", "err/18/processing-failed/"},
		{"random string gets the time path too", "r/!{firehose:random-string}/", "e/!{firehose:error-output-type}/!{firehose:random-string}", false, nil,
			"r/{R}/2019/10/01/09/", "e/processing-failed/{R}"},
		{"two random strings", "!{firehose:random-string}/!{firehose:random-string}/", "e/!{firehose:error-output-type}/", false, nil,
			"{R}/{R}/2019/10/01/09/", "e/processing-failed/"},
		{"error type twice", "p/!{timestamp:yyyy}/", "e/!{firehose:error-output-type}/x/!{firehose:error-output-type}/", false, nil,
			"p/2019/", "e/processing-failed/x/processing-failed/"},
		{"partitionKeyFromQuery", "customer_id=!{partitionKeyFromQuery:customer_id}/", "e/!{firehose:error-output-type}/", true, nil,
			"customer_id=c-42/2019/10/01/09/", "e/processing-failed/"},
		{"partitionKeyFromLambda with timestamp", "y=!{partitionKeyFromLambda:year}/h=!{timestamp:HH}/", "e/!{firehose:error-output-type}/!{timestamp:yyyy}/", true, nil,
			"y=2024/h=09/", "e/processing-failed/2019/"},
		{"empty key value", "k=!{partitionKeyFromQuery:empty}/", "e/!{firehose:error-output-type}/", true, nil,
			"k=/2019/10/01/09/", "e/processing-failed/"},
		{"same key twice", "!{partitionKeyFromQuery:customer_id}/!{partitionKeyFromQuery:customer_id}/", "e/!{firehose:error-output-type}/", true, nil,
			"c-42/c-42/2019/10/01/09/", "e/processing-failed/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.prefix, tc.errPrefix, Options{DynamicPartitioning: tc.dp, TimeZone: tc.tz})
			v := Values{Time: arrival, Keys: keys, Seed: "seed"}
			got, err := s.Key(v)
			if err != nil {
				t.Fatal(err)
			}
			match(t, "Key", got, tc.want)
			again, _ := s.Key(v)
			if again != got {
				t.Errorf("Key not deterministic: %q then %q", got, again)
			}
			gotErr, err := s.ErrorKey("processing-failed", v)
			if err != nil {
				t.Fatal(err)
			}
			match(t, "ErrorKey", gotErr, tc.wantErr)
		})
	}
}

func match(t *testing.T, what, got, want string) {
	t.Helper()
	re := "^" + strings.ReplaceAll(regexp.QuoteMeta(want), "\\{R\\}", "("+randomRE+")") + "$"
	m := regexp.MustCompile(re).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
	seen := map[string]bool{}
	for _, r := range m[1:] {
		if seen[r] {
			t.Errorf("%s = %q: random string %s repeated; each occurrence must differ", what, got, r)
		}
		seen[r] = true
	}
}

func TestRandomStringDeterminism(t *testing.T) {
	s := mustParse(t, "!{firehose:random-string}/", "e/!{firehose:error-output-type}/", Options{})
	a1, _ := s.Key(Values{Time: arrival, Seed: "a"})
	a2, _ := s.Key(Values{Time: arrival, Seed: "a"})
	b, _ := s.Key(Values{Time: arrival, Seed: "b"})
	if a1 != a2 {
		t.Errorf("same seed: %q vs %q", a1, a2)
	}
	if a1 == b {
		t.Errorf("different seeds give the same random string %q", a1)
	}
	if !regexp.MustCompile(`^[0-9a-f]{11}/2019/10/01/09/$`).MatchString(a1) {
		t.Errorf("key %q", a1)
	}
}

// TestDocExamples evaluates the examples of Firehose's "Custom Prefixes
// for Amazon S3 Objects" page (at 10:30 AM UTC on Aug 27, 2018). The
// page's own outputs contain typos (2018/08/10/ for Aug 27, a missing
// hour); the expected values here are the rules applied to the inputs.
func TestDocExamples(t *testing.T) {
	at := time.Date(2018, 8, 27, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		prefix, errPrefix, want, wantErr string
	}{
		{"", "myFirehoseFailures/!{firehose:error-output-type}/",
			"2018/08/27/10/", "myFirehoseFailures/processing-failed/"},
		{"myFirehose/DeliveredYear=!{timestamp:yyyy}/anyMonth/rand=!{firehose:random-string}",
			"myFirehoseFailures/!{firehose:error-output-type}/!{timestamp:yyyy}/anyMonth/!{timestamp:dd}",
			"myFirehose/DeliveredYear=2018/anyMonth/rand={R}", "myFirehoseFailures/processing-failed/2018/anyMonth/27"},
		{"myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
			"myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}",
			"myPrefix/year=2018/month=08/day=27/hour=10/", "myErrorPrefix/year=2018/month=08/day=27/hour=10/processing-failed"},
		{"myFirehosePrefix", "", "myFirehosePrefix2018/08/27/10/", "myFirehosePrefixprocessing-failed/2018/08/27/10/"},
		// Athena's partition projection example with dynamic partitioning.
		{"prefix/!{timestamp:yyyy}-!{timestamp:MM}-!{timestamp:dd}/!{partitionKeyFromQuery:customer_id}/",
			"errors/!{firehose:error-output-type}/", "prefix/2018-08-27/customer-1234/", "errors/processing-failed/"},
	} {
		dp := strings.Contains(tc.prefix, "partitionKey")
		s := mustParse(t, tc.prefix, tc.errPrefix, Options{DynamicPartitioning: dp})
		v := Values{Time: at, Keys: map[string]string{"partitionKeyFromQuery:customer_id": "customer-1234"}, Seed: "x"}
		got, err := s.Key(v)
		if err != nil {
			t.Fatal(err)
		}
		match(t, "Key("+tc.prefix+")", got, tc.want)
		gotErr, err := s.ErrorKey("processing-failed", v)
		if err != nil {
			t.Fatal(err)
		}
		match(t, "ErrorKey("+tc.errPrefix+")", gotErr, tc.wantErr)
	}
	// "Prefix: !{timestamp:yyyy/MM/dd}, ErrorOutputPrefix unspecified:
	// invalid input".
	if _, err := Parse("!{timestamp:yyyy/MM/dd}", "", Options{}); !hasRule(err, RuleErrorPrefixNeeded) {
		t.Errorf("doc example 2 accepted or wrong rule: %v", err)
	}
}

func violations(err error) []*Violation {
	var out []*Violation
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	for _, e := range j.Unwrap() {
		if v, ok := e.(*Violation); ok {
			out = append(out, v)
		}
	}
	return out
}

func hasRule(err error, rule string) bool {
	for _, v := range violations(err) {
		if v.Rule == rule {
			return true
		}
	}
	return false
}

// TestValidation has a case for every rule: the exact violations (field,
// rule, offending text) Parse reports.
func TestValidation(t *testing.T) {
	long := strings.Repeat("a", 1025)
	type viol struct{ field, rule, text string }
	for _, tc := range []struct {
		name, prefix, errPrefix string
		opts                    Options
		want                    []viol
	}{
		{"rule 2: stray !{", "a!{b", "", Options{},
			[]viol{{"Prefix", RuleExpression, "!{b"}}},
		{"rule 2: unknown namespace", "!{foo:bar}/", "e/!{firehose:error-output-type}", Options{},
			[]viol{{"Prefix", RuleExpression, "!{foo:bar}"}}},
		{"rule 2: no colon", "!{timestamp}/", "e/!{firehose:error-output-type}", Options{},
			[]viol{{"Prefix", RuleExpression, "!{timestamp}"}}},
		{"rule 2: bad firehose value", "!{firehose:uuid}", "e/!{firehose:error-output-type}", Options{},
			[]viol{{"Prefix", RuleExpression, "!{firehose:uuid}"}}},
		{"rule 2: bad timestamp pattern", "!{timestamp:yyyy-ii}", "e/!{firehose:error-output-type}", Options{},
			[]viol{{"Prefix", RuleExpression, "!{timestamp:yyyy-ii}"}}},
		{"rule 2: empty timestamp pattern", "!{timestamp:}", "e/!{firehose:error-output-type}", Options{},
			[]viol{{"Prefix", RuleExpression, "!{timestamp:}"}}},
		{"rule 2: empty key name", "!{partitionKeyFromQuery:}", "e/!{firehose:error-output-type}", Options{DynamicPartitioning: true},
			[]viol{{"Prefix", RuleExpression, "!{partitionKeyFromQuery:}"}, {"Prefix", RuleDPNeedsKeys, "!{partitionKeyFromQuery:}"}}},
		{"rule 2: in the error prefix", "p/", "e/!{firehose:error-output-type", Options{},
			[]viol{{"ErrorOutputPrefix", RuleExpression, "!{firehose:error-output-type"}}},
		{"rule 3: error prefix required", "!{timestamp:yyyy}/", "", Options{},
			[]viol{{"ErrorOutputPrefix", RuleErrorPrefixNeeded, ""}}},
		{"rule 3: plain error prefix with an expression prefix", "!{timestamp:yyyy}/", "errors/", Options{},
			[]viol{{"ErrorOutputPrefix", RuleErrorTypeNeeded, "errors/"}}},
		{"rule 3: error prefix expressions without the type", "p/", "e/!{timestamp:yyyy}/", Options{},
			[]viol{{"ErrorOutputPrefix", RuleErrorTypeNeeded, "e/!{timestamp:yyyy}/"}}},
		{"rule 3: error type in prefix", "p/!{firehose:error-output-type}/", "e/!{firehose:error-output-type}/", Options{},
			[]viol{{"Prefix", RuleErrorTypeInPrefix, "!{firehose:error-output-type}"}}},
		{"rule 4: evaluated prefix too long", strings.Repeat("p", 520), "", Options{},
			[]viol{{"Prefix", RuleEvaluatedLength, strings.Repeat("p", 520)}}},
		{"rule 4: error prefix too long", "p/", strings.Repeat("e", 513) + "!{firehose:error-output-type}", Options{},
			[]viol{{"ErrorOutputPrefix", RuleEvaluatedLength, strings.Repeat("e", 513) + "!{firehose:error-output-type}"}}},
		{"keys in the error prefix", "!{partitionKeyFromQuery:a}/", "e/!{firehose:error-output-type}/!{partitionKeyFromQuery:a}", Options{DynamicPartitioning: true},
			[]viol{{"ErrorOutputPrefix", RuleKeyInErrorPrefix, "!{partitionKeyFromQuery:a}"}}},
		{"dynamic partitioning without keys", "p/!{timestamp:yyyy}/", "e/!{firehose:error-output-type}/", Options{DynamicPartitioning: true},
			[]viol{{"Prefix", RuleDPNeedsKeys, "p/!{timestamp:yyyy}/"}}},
		{"dynamic partitioning without error prefix", "p/", "", Options{DynamicPartitioning: true},
			[]viol{{"Prefix", RuleDPNeedsKeys, "p/"}, {"ErrorOutputPrefix", RuleDPNeedsErrorPref, ""}}},
		{"keys without dynamic partitioning", "!{partitionKeyFromLambda:k}/", "e/!{firehose:error-output-type}/", Options{},
			[]viol{{"Prefix", RuleKeysNeedDP, "!{partitionKeyFromLambda:k}"}}},
		{"1024 characters", long, "", Options{},
			[]viol{{"Prefix", RuleLength, long[:40] + "…"}, {"Prefix", RuleEvaluatedLength, long}}},
		{"file extension", "p/", "", Options{FileExtension: ".GZ"},
			[]viol{{"FileExtension", RuleFileExtension, ".GZ"}}},
		{"file extension without dot", "p/", "", Options{FileExtension: "gz"},
			[]viol{{"FileExtension", RuleFileExtension, "gz"}}},
		{"all violations at once", "!{firehose:error-output-type}!{x:y}", "", Options{FileExtension: "x"},
			[]viol{{"FileExtension", RuleFileExtension, "x"}, {"Prefix", RuleExpression, "!{x:y}"},
				{"Prefix", RuleErrorTypeInPrefix, "!{firehose:error-output-type}"}, {"ErrorOutputPrefix", RuleErrorPrefixNeeded, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.prefix, tc.errPrefix, tc.opts)
			if err == nil {
				t.Fatalf("accepted: %+v", s)
			}
			var got []viol
			for _, v := range violations(err) {
				got = append(got, viol{v.Field, v.Rule, v.Text})
				if !strings.Contains(err.Error(), v.Rule) {
					t.Errorf("message %q does not name rule %q", err, v.Rule)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("violations\n got %q\nwant %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("violation %d\n got %q\nwant %q", i, got[i], tc.want[i])
				}
			}
		})
	}
	for _, ok := range []struct {
		p, e string
		o    Options
	}{
		{"", "", Options{}},
		{"a/b/", "errors/", Options{FileExtension: ".gz"}},
		{"!{partitionKeyFromQuery:a}/", "e/!{firehose:error-output-type}/", Options{DynamicPartitioning: true, FileExtension: ".parquet"}},
		{strings.Repeat("p", 498), "", Options{}}, // 498 + 14 = 512
		{"x", "", Options{FileExtension: ".log-v1_(a)*!'"}},
	} {
		if _, err := Parse(ok.p, ok.e, ok.o); err != nil {
			t.Errorf("Parse(%q, %q, %+v): %v", ok.p, ok.e, ok.o, err)
		}
	}
}

func TestEvaluatedLengthAtRuntime(t *testing.T) {
	s := mustParse(t, "k=!{partitionKeyFromQuery:k}/", "e/!{firehose:error-output-type}/", Options{DynamicPartitioning: true})
	_, err := s.Key(Values{Time: arrival, Keys: map[string]string{"partitionKeyFromQuery:k": strings.Repeat("v", 510)}})
	if !errors.Is(err, ErrPrefixTooLong) {
		t.Errorf("510-character key value: %v, want ErrPrefixTooLong", err)
	}
	got, err := s.Key(Values{Time: arrival, Keys: map[string]string{"partitionKeyFromQuery:k": strings.Repeat("v", 495)}})
	if err != nil || len(got) != 512 {
		t.Errorf("512-character prefix: %d characters, %v", len(got), err)
	}
	if _, err := s.Key(Values{Time: arrival}); !errors.Is(err, ErrMissingKey) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := s.ErrorKey("", Values{Time: arrival}); err == nil {
		t.Error("empty output type accepted")
	}
}

func TestObjectName(t *testing.T) {
	tokyo, err := LoadTimeZone("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	u := ObjectUUID("seed")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(u) {
		t.Errorf("uuid %q", u)
	}
	if ObjectUUID("seed") != u || ObjectUUID("seed2") == u {
		t.Error("uuid not derived from the seed")
	}
	s := mustParse(t, "", "", Options{FileExtension: ".gz"})
	if got, want := s.ObjectName("seong-firehose-batch-limit-test", arrival, u), "seong-firehose-batch-limit-test-1-2019-10-01-09-20-18-"+u+".gz"; got != want {
		t.Errorf("ObjectName = %q, want %q", got, want)
	}
	s = mustParse(t, "", "", Options{TimeZone: tokyo})
	late := time.Date(2019, 10, 1, 20, 0, 1, 0, time.UTC)
	if got, want := s.ObjectName("s", late, u), "s-1-2019-10-02-05-00-01-"+u; got != want {
		t.Errorf("ObjectName in Tokyo = %q, want %q", got, want)
	}
	if k, _ := s.Key(Values{Time: late}); k != "2019/10/02/05/" {
		t.Errorf("Key in Tokyo = %q", k)
	}
	for _, bad := range []string{"Mars/Olympus", "UTC+1", strings.Repeat("a", 51)} {
		if _, err := LoadTimeZone(bad); err == nil {
			t.Errorf("time zone %q accepted", bad)
		}
	}
	if loc, err := LoadTimeZone(""); err != nil || loc != time.UTC {
		t.Errorf("empty time zone: %v, %v", loc, err)
	}
}
