// Package prefix implements Amazon Data Firehose's S3 prefix expression
// language and object naming, shared by the object destinations (file,
// s3):
//
//	<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>
//
// A Prefix or ErrorOutputPrefix is literal text with expressions
// !{namespace:value}:
//
//   - !{timestamp:<Java DateTimeFormatter pattern>}: the approximate arrival
//     time of the oldest record of the object, in Options.TimeZone (UTC by
//     default). Every occurrence in one object evaluates to the same instant.
//   - !{firehose:random-string}: 11 lowercase hexadecimal characters, a new
//     value per occurrence. Deviation from Firehose, whose string is random:
//     here it derives from a hash of the object's identity (batch identity,
//     partition, occurrence), so a redelivery after a crash writes the same
//     key instead of a duplicate object.
//   - !{firehose:error-output-type}: ErrorOutputPrefix only; the error
//     output type (processing-failed, partitioning-failed, ...).
//   - !{partitionKeyFromQuery:name}, !{partitionKeyFromLambda:name}: Prefix
//     only, with dynamic partitioning; the record's partition key, read from
//     pipeline.Record.Keys under the full expression name
//     ("partitionKeyFromQuery:name").
//
// Parse enforces the rules of Firehose's documentation (see Violation).
// Split groups a batch's records into partitions, one object each.
//
// Sources: https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html
// (expressions and semantic rules), s3-object-name.html (object names,
// CustomTimeZone), dynamic-partitioning.html and buffering.html (active
// partitions, limit 500), dynamic-partitioning-error-handling.html.
package prefix

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // CustomTimeZone without a system zoneinfo
)

// Firehose limits.
const (
	// MaxPrefixLength is the longest Prefix or ErrorOutputPrefix accepted
	// (ExtendedS3DestinationConfiguration, 0..1024 characters).
	MaxPrefixLength = 1024
	// MaxEvaluatedLength is the longest evaluated prefix.
	MaxEvaluatedLength = 512
	// DefaultMaxActivePartitions is Firehose's default active-partition
	// limit per stream (raisable to 5000 on request).
	DefaultMaxActivePartitions = 500
	// StreamVersion is the <version> part of object names. Firehose
	// increments it on every configuration change; Sluice streams are
	// configured from a file and stay at 1.
	StreamVersion = "1"
	// DefaultTimePrefix is appended to a Prefix that has no timestamp
	// expression (directly, without a slash).
	DefaultTimePrefix = "!{timestamp:yyyy/MM/dd/HH/}"
)

// Options are the parts of a destination's configuration that shape keys.
type Options struct {
	// DynamicPartitioning is Firehose's DynamicPartitioningConfiguration
	// Enabled: the Prefix must then use partitionKeyFrom* expressions, and
	// only then may it.
	DynamicPartitioning bool
	// TimeZone is Firehose's CustomTimeZone: the zone of the timestamp
	// expressions and of the time in object names. nil means UTC.
	TimeZone *time.Location
	// FileExtension ends object names. The caller passes the effective
	// extension: Firehose's FileExtension when configured, else the
	// format's default (".gz", ".parquet", ""). It must be empty or match
	// Firehose's pattern \.[0-9a-z!\-_.*'()]+ (at most 128 characters).
	FileExtension string
}

// Spec is a parsed Prefix / ErrorOutputPrefix pair. It is immutable and
// safe for concurrent use.
type Spec struct {
	prefix    []segment
	errPrefix []segment
	// keys are the partition key names the Prefix uses, in order of first
	// appearance, each once ("partitionKeyFromQuery:customer_id").
	keys []string
	loc  *time.Location
	ext  string
	// staticMax is the longest the Prefix can evaluate to when it has no
	// partition keys.
	staticMax int
}

type segKind uint8

const (
	segLiteral segKind = iota
	segTime
	segRandom
	segErrorType
	segKey
)

type segment struct {
	kind   segKind
	text   string // literal text, or the key name for segKey
	layout timeLayout
}

// Rule identifiers used in Violations: the section of
// ../shared/firehose-contract.md and the rule.
const (
	RuleLength            = "4.2 length: Prefix and ErrorOutputPrefix are at most 1024 characters"
	RuleFileExtension     = `4.2 FileExtension: empty or \.[0-9a-z!\-_.*'()]+, at most 128 characters`
	RuleExpression        = "4.3 rule 2: !{ may appear only in a valid expression"
	RuleErrorPrefixNeeded = "4.3 rule 3: ErrorOutputPrefix is required when Prefix has expressions"
	RuleErrorTypeNeeded   = "4.3 rule 3: an ErrorOutputPrefix with expressions (or with a Prefix that has them) must contain !{firehose:error-output-type}"
	RuleErrorTypeInPrefix = "4.3 rule 3: Prefix may not contain !{firehose:error-output-type}"
	RuleEvaluatedLength   = "4.3 rule 4: an evaluated prefix is at most 512 characters"
	RuleKeyInErrorPrefix  = "4.3: partitionKeyFrom* expressions are allowed in Prefix only"
	RuleDPNeedsKeys       = "4.5: dynamic partitioning requires partitionKeyFrom* expressions in Prefix"
	RuleKeysNeedDP        = "4.5: partitionKeyFrom* expressions require dynamic partitioning"
	RuleDPNeedsErrorPref  = "4.5: dynamic partitioning requires an ErrorOutputPrefix"
)

// Violation is one broken rule. Parse joins every violation it finds
// (errors.Join), so all of them are reported at once.
type Violation struct {
	Field string // "Prefix", "ErrorOutputPrefix" or "FileExtension"
	Rule  string // one of the Rule* constants
	Text  string // the offending text
	Msg   string // details, may be empty
}

func (v *Violation) Error() string {
	s := fmt.Sprintf("%s: %s: %q", v.Field, v.Rule, v.Text)
	if v.Msg != "" {
		s += ": " + v.Msg
	}
	return s
}

var fileExtRE = regexp.MustCompile(`^\.[0-9a-z!\-_.*'()]+$`)

// Parse checks prefix and errorPrefix (Firehose's Prefix and
// ErrorOutputPrefix; "" means not specified) against Firehose's rules and
// compiles them. Rules (Rule* constants):
//
//   - a Prefix without a timestamp expression gets !{timestamp:yyyy/MM/dd/HH/}
//     appended directly (no slash inserted): "logs" → "logs2019/10/01/09/";
//   - !{ only as part of a valid expression, in both fields;
//   - ErrorOutputPrefix is required when Prefix has expressions, and must
//     then (or whenever it has expressions itself) contain
//     !{firehose:error-output-type}; Prefix may not contain it;
//   - partitionKeyFrom* in Prefix only, and exactly when dynamic
//     partitioning is enabled, which also requires an ErrorOutputPrefix;
//   - each field at most 1024 characters; a Prefix whose evaluation cannot
//     fit in 512 characters is rejected here, others when evaluated.
//
// When neither field has expressions, failed records go under
// <ErrorOutputPrefix><error-output-type>/yyyy/MM/dd/HH/, or
// <Prefix><error-output-type>/yyyy/MM/dd/HH/ without an ErrorOutputPrefix
// (Firehose's documentation is inconsistent about this case; the layout
// follows its example table, with a slash after the output type).
func Parse(prefix, errorPrefix string, opts Options) (*Spec, error) {
	var errs []error
	bad := func(field, rule, text, msg string) {
		errs = append(errs, &Violation{Field: field, Rule: rule, Text: text, Msg: msg})
	}
	s := &Spec{loc: opts.TimeZone, ext: opts.FileExtension}
	if s.loc == nil {
		s.loc = time.UTC
	}
	if len(opts.FileExtension) > 128 || opts.FileExtension != "" && !fileExtRE.MatchString(opts.FileExtension) {
		bad("FileExtension", RuleFileExtension, opts.FileExtension, "")
	}
	for _, f := range []struct{ name, v string }{{"Prefix", prefix}, {"ErrorOutputPrefix", errorPrefix}} {
		if len(f.v) > MaxPrefixLength {
			bad(f.name, RuleLength, f.v[:40]+"…", fmt.Sprintf("%d characters", len(f.v)))
		}
	}

	pSegs, pErrs := parseSegments(prefix)
	for _, e := range pErrs {
		bad("Prefix", RuleExpression, e.text, e.msg)
	}
	eSegs, eErrs := parseSegments(errorPrefix)
	for _, e := range eErrs {
		bad("ErrorOutputPrefix", RuleExpression, e.text, e.msg)
	}
	pExpr, eExpr := hasExpr(pSegs), hasExpr(eSegs)

	hasTime, seen := false, map[string]bool{}
	for _, sg := range pSegs {
		switch sg.kind {
		case segTime:
			hasTime = true
		case segErrorType:
			bad("Prefix", RuleErrorTypeInPrefix, "!{firehose:error-output-type}", "")
		case segKey:
			if !seen[sg.text] {
				seen[sg.text] = true
				s.keys = append(s.keys, sg.text)
			}
		}
	}
	hasErrType := false
	for _, sg := range eSegs {
		switch sg.kind {
		case segErrorType:
			hasErrType = true
		case segKey:
			bad("ErrorOutputPrefix", RuleKeyInErrorPrefix, "!{"+sg.text+"}", "")
		}
	}
	switch {
	case pExpr && errorPrefix == "":
		bad("ErrorOutputPrefix", RuleErrorPrefixNeeded, errorPrefix, "Prefix "+quote(prefix)+" has expressions")
	case (pExpr || eExpr) && errorPrefix != "" && !hasErrType && len(eErrs) == 0:
		bad("ErrorOutputPrefix", RuleErrorTypeNeeded, errorPrefix, "")
	}
	if opts.DynamicPartitioning {
		if len(s.keys) == 0 {
			bad("Prefix", RuleDPNeedsKeys, prefix, "")
		}
		if errorPrefix == "" && !pExpr {
			bad("ErrorOutputPrefix", RuleDPNeedsErrorPref, errorPrefix, "")
		}
	} else if len(s.keys) > 0 {
		bad("Prefix", RuleKeysNeedDP, "!{"+s.keys[0]+"}", "enable dynamic partitioning or remove the partition keys")
	}

	if !hasTime {
		pSegs = append(pSegs, defaultTime())
	}
	s.prefix = pSegs
	switch {
	case eExpr:
		s.errPrefix = eSegs
	default:
		// Both plain: <ErrorOutputPrefix or Prefix><type>/yyyy/MM/dd/HH/.
		base := errorPrefix
		if base == "" {
			base = prefix
		}
		s.errPrefix = []segment{{kind: segLiteral, text: base}, {kind: segErrorType}, {kind: segLiteral, text: "/"}, defaultTime()}
	}
	minP, maxP := staticLen(s.prefix)
	s.staticMax = maxP
	if minP > MaxEvaluatedLength || len(s.keys) == 0 && maxP > MaxEvaluatedLength {
		bad("Prefix", RuleEvaluatedLength, prefix, fmt.Sprintf("evaluates to up to %d characters", maxP))
	}
	if minE, _ := staticLen(s.errPrefix); errorPrefix != "" && minE > MaxEvaluatedLength {
		bad("ErrorOutputPrefix", RuleEvaluatedLength, errorPrefix, fmt.Sprintf("evaluates to at least %d characters", minE))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func defaultTime() segment {
	l, _ := compileTimeLayout("yyyy/MM/dd/HH/")
	return segment{kind: segTime, layout: l}
}

func hasExpr(segs []segment) bool {
	for _, s := range segs {
		if s.kind != segLiteral {
			return true
		}
	}
	return false
}

// staticLen bounds the evaluated length, counting partition keys as empty
// (min) and error output types as empty.
func staticLen(segs []segment) (lo, hi int) {
	for _, s := range segs {
		switch s.kind {
		case segLiteral:
			lo += len(s.text)
			hi += len(s.text)
		case segRandom:
			lo += randomLen
			hi += randomLen
		case segTime:
			hi += s.layout.maxLen()
		}
	}
	return lo, hi
}

type exprError struct{ text, msg string }

// parseSegments splits a prefix into literal text and expressions. An
// expression runs from "!{" to the next "}".
func parseSegments(p string) ([]segment, []exprError) {
	var segs []segment
	var errs []exprError
	for p != "" {
		i := strings.Index(p, "!{")
		if i < 0 {
			segs = append(segs, segment{kind: segLiteral, text: p})
			break
		}
		if i > 0 {
			segs = append(segs, segment{kind: segLiteral, text: p[:i]})
		}
		end := strings.IndexByte(p[i:], '}')
		if end < 0 {
			errs = append(errs, exprError{p[i:], "unterminated expression (no closing '}')"})
			break
		}
		expr := p[i : i+end+1]
		p = p[i+end+1:]
		sg, err := parseExpr(expr[2 : len(expr)-1])
		if err != "" {
			errs = append(errs, exprError{expr, err})
			continue
		}
		segs = append(segs, sg)
	}
	return segs, errs
}

func parseExpr(body string) (segment, string) {
	ns, val, ok := strings.Cut(body, ":")
	if !ok {
		return segment{}, "expected !{namespace:value}"
	}
	switch ns {
	case "timestamp":
		l, err := compileTimeLayout(val)
		if err != nil {
			return segment{}, err.Error()
		}
		return segment{kind: segTime, layout: l}, ""
	case "firehose":
		switch val {
		case "random-string":
			return segment{kind: segRandom}, ""
		case "error-output-type":
			return segment{kind: segErrorType}, ""
		}
		return segment{}, "the firehose namespace has values random-string and error-output-type"
	case "partitionKeyFromQuery", "partitionKeyFromLambda":
		if val == "" {
			return segment{}, "empty partition key name"
		}
		if strings.Contains(val, "!{") {
			return segment{}, "partition key name contains !{"
		}
		return segment{kind: segKey, text: body}, ""
	}
	return segment{}, "unknown namespace " + quote(ns) + " (timestamp, firehose, partitionKeyFromQuery, partitionKeyFromLambda)"
}

// PartitionKeys returns the partition keys the Prefix uses, in full
// expression form ("partitionKeyFromQuery:customer_id"), in order of first
// appearance. Empty without dynamic partitioning.
func (s *Spec) PartitionKeys() []string { return append([]string(nil), s.keys...) }

// TimeZone returns the zone of timestamps and object names.
func (s *Spec) TimeZone() *time.Location { return s.loc }

var timeZoneRE = regexp.MustCompile(`^[a-zA-Z/_]{1,50}$`)

// LoadTimeZone resolves Firehose's CustomTimeZone (pattern [a-zA-Z/_]+, at
// most 50 characters, e.g. "Asia/Tokyo"); "" is UTC. The time zone
// database is embedded (time/tzdata), so it works without one installed.
func LoadTimeZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if !timeZoneRE.MatchString(name) {
		return nil, fmt.Errorf("time zone %q: must match [a-zA-Z/_]+ and have at most 50 characters", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	return loc, nil
}
