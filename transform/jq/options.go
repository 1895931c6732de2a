package jq

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/itchyny/gojq"

	"github.com/sluice-dev/sluice/pipeline"
)

// Limits and defaults of Options.
const (
	// EngineJQ16 is the only JsonParsingEngine Firehose accepts ("JQ-1.6").
	EngineJQ16 = "JQ-1.6"
	// MaxKeys is the largest number of partition keys one query may
	// extract (Firehose: 50, enforced by the AWS CDK).
	MaxKeys = 50
	// DefaultRecordTimeout bounds the evaluation of the query on one
	// record (a Sluice safeguard; Firehose documents no such limit).
	DefaultRecordTimeout = time.Second
	// KeyPrefix namespaces the partition keys this processor sets in
	// pipeline.Record.Keys: the key of query key "year" is
	// "partitionKeyFromQuery:year", as written in a prefix expression
	// !{partitionKeyFromQuery:year}.
	KeyPrefix = "partitionKeyFromQuery:"
)

// Options configure a metadata_extraction processor. The YAML keys are the
// processor block's keys in a stream's configuration.
type Options struct {
	// Query is Firehose's MetadataExtractionQuery: a jq object
	// construction whose keys are the partition key names and whose
	// values are jq 1.6 expressions evaluated on the record, e.g.
	// {customer_id: .customer_id, year: .ts | strftime("%Y")}. Required.
	Query string `yaml:"query"`
	// JSONParsingEngine is Firehose's JsonParsingEngine; only "JQ-1.6"
	// (the default) is accepted.
	JSONParsingEngine string `yaml:"json_parsing_engine"`
	// RecordTimeout bounds the evaluation of the query on one record; a
	// record whose query runs longer fails. Zero means no bound other
	// than the batch's context. Default DefaultRecordTimeout. (Sluice
	// extension, not a Firehose parameter.)
	RecordTimeout time.Duration `yaml:"record_timeout"`
}

// DefaultOptions returns the defaults a configuration block is decoded onto.
func DefaultOptions() Options {
	return Options{JSONParsingEngine: EngineJQ16, RecordTimeout: DefaultRecordTimeout}
}

// Validate reports every problem with the options at once (Compile
// without its result).
func (o Options) Validate() error {
	_, err := o.Compile()
	return err
}

// partitionKey is one key of the query's object: its name in the query and
// its name in pipeline.Record.Keys.
type partitionKey struct {
	name string
	key  string // KeyPrefix + name
}

// Compiled is options that passed Compile: the query parsed, checked and
// compiled once, in the form the processor uses.
type Compiled struct {
	code *gojq.Code
	keys []partitionKey // in query order
	// fields are the top-level fields the query reads, or nil when it may
	// read the record in other ways (see rootFields).
	fields  map[string]struct{}
	timeout time.Duration
}

// Keys returns the partition key names the query extracts, in query
// order, without KeyPrefix. The configuration checks them against the
// prefix's !{partitionKeyFromQuery:…} expressions.
func (c Compiled) Keys() []string {
	names := make([]string, len(c.keys))
	for i, k := range c.keys {
		names[i] = k.name
	}
	return names
}

// Compile validates the options, reporting every problem at once, each a
// *pipeline.OptionError at its key (the engine, the timeout, and the
// query: syntax, shape, key names, jq 1.6 compatibility, compilation), and
// returns them compiled for New.
func (o Options) Compile() (Compiled, error) {
	var errs []error
	if o.JSONParsingEngine != EngineJQ16 {
		errs = append(errs, pipeline.OptionErrorf("json_parsing_engine", "%q is not supported; the only engine is %q", o.JSONParsingEngine, EngineJQ16))
	}
	if o.RecordTimeout < 0 {
		errs = append(errs, pipeline.OptionErrorf("record_timeout", "%v is negative", o.RecordTimeout))
	}
	c, qerrs := compileQuery(o.Query)
	for _, err := range qerrs {
		errs = append(errs, &pipeline.OptionError{Key: "query", Err: err})
	}
	if err := errors.Join(errs...); err != nil {
		return Compiled{}, err
	}
	c.timeout = o.RecordTimeout
	return c, nil
}

// compileQuery parses, checks and compiles a MetadataExtractionQuery. It
// returns every problem it finds.
func compileQuery(src string) (Compiled, []error) {
	if strings.TrimSpace(src) == "" {
		return Compiled{}, []error{errors.New("required (a jq object such as {customer_id: .customer_id})")}
	}
	q, err := gojq.Parse(src)
	if err != nil {
		return Compiled{}, []error{parseError(src, err)}
	}
	var errs []error
	if len(q.Imports) > 0 || q.Meta != nil {
		errs = append(errs, errors.New("modules (import, include) are not available"))
	}
	obj := q.Term
	if q.Op != 0 || obj == nil || obj.Type != gojq.TermTypeObject || len(obj.SuffixList) > 0 {
		errs = append(errs, fmt.Errorf("%q is not a jq object construction: the query must be an object such as {customer_id: .customer_id, year: .ts | strftime(\"%%Y\")}", src))
		return Compiled{}, errs
	}
	kvs := obj.Object.KeyVals
	if len(kvs) == 0 {
		errs = append(errs, errors.New("the object has no keys: at least one partition key is required"))
	}
	if len(kvs) > MaxKeys {
		errs = append(errs, fmt.Errorf("%d keys: at most %d partition keys are allowed", len(kvs), MaxKeys))
	}
	keys := make([]partitionKey, 0, len(kvs))
	seen := make(map[string]bool, len(kvs))
	for i, kv := range kvs {
		name, ok := staticKey(kv)
		if !ok {
			errs = append(errs, fmt.Errorf("key %d (%s): partition key names must be literal (an identifier or a plain string) so that they can be used as !{partitionKeyFromQuery:<name>}", i+1, kv))
			continue
		}
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("key %d: the partition key name is empty", i+1))
		case strings.ContainsAny(name, "{}"):
			errs = append(errs, fmt.Errorf("key %q: a partition key name cannot contain '{' or '}'", name))
		case seen[name]:
			errs = append(errs, fmt.Errorf("key %q appears more than once", name))
		}
		seen[name] = true
		if kv.Val != nil && !jq16ObjectValue(kv.Val) {
			errs = append(errs, fmt.Errorf("key %q: jq 1.6 only accepts terms joined by '|' as object values; write (%s) in parentheses", name, kv.Val))
		}
		keys = append(keys, partitionKey{name: name, key: KeyPrefix + name})
	}
	if len(errs) > 0 {
		return Compiled{}, errs
	}
	// No environment loader: env and $ENV are empty, so a query cannot
	// read the daemon's environment. input, inputs and debug are not
	// available to library users of gojq.
	code, err := gojq.Compile(q)
	if err != nil {
		return Compiled{}, []error{fmt.Errorf("compile %q: %w", src, err)}
	}
	fields, ok := rootFields(obj.Object)
	if !ok || len(q.FuncDefs) > 0 {
		fields = nil
	}
	return Compiled{code: code, keys: keys, fields: fields}, nil
}

// staticKey returns the name of an object key known before evaluation:
// {name: …}, {"name": …}, {name} and {$name}; not {(expr): …} nor
// {"\(expr)": …}.
func staticKey(kv *gojq.ObjectKeyVal) (string, bool) {
	switch {
	case kv.KeyQuery != nil:
		return "", false
	case kv.KeyString != nil:
		if kv.KeyString.Queries != nil {
			return "", false
		}
		return kv.KeyString.Str, true
	default:
		return strings.TrimPrefix(kv.Key, "$"), true
	}
}

// jq16ObjectValue reports whether q is valid as an object value in jq 1.6,
// whose grammar only takes ExpD: ExpD '|' ExpD | '-' ExpD | Term. gojq
// follows jq 1.7, which also takes `.x + 1`, `if … end`, `try …`,
// `reduce …` there; Firehose rejects those ("syntax error, unexpected
// if"), so Sluice does too rather than accept a configuration Firehose
// would refuse. Parenthesised expressions are terms and always pass.
func jq16ObjectValue(q *gojq.Query) bool {
	if q.Op == gojq.OpPipe {
		return jq16ObjectValue(q.Left) && jq16ObjectValue(q.Right)
	}
	if q.Op != 0 || q.Term == nil || len(q.Patterns) > 0 {
		return false
	}
	switch q.Term.Type {
	case gojq.TermTypeIf, gojq.TermTypeTry, gojq.TermTypeReduce, gojq.TermTypeForeach, gojq.TermTypeLabel:
		return false
	case gojq.TermTypeUnary:
		return q.Term.Unary.Op == gojq.OpSub && jq16ObjectValue(&gojq.Query{Term: q.Term.Unary.Term})
	}
	return true
}

// parseError renders a gojq parse error with its line and column.
func parseError(src string, err error) error {
	var pe *gojq.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("syntax error: %w", err)
	}
	off := min(max(pe.Offset-len(pe.Token), 0), len(src))
	line := 1 + strings.Count(src[:off], "\n")
	col := 1 + off - (strings.LastIndexByte(src[:off], '\n') + 1)
	return fmt.Errorf("syntax error at line %d, column %d: %w", line, col, err)
}
