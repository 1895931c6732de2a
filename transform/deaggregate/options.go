package deaggregate

import (
	"encoding/base64"
	"errors"

	"github.com/sluice-dev/sluice/pipeline"
)

// Sub-record types (Firehose's SubRecordType, plus KPL).
const (
	// TypeKPL splits records aggregated by the Kinesis Producer Library
	// (magic F3 89 9A C2, protobuf AggregatedRecord, MD5). Firehose does
	// this automatically for Kinesis Data Streams sources; Sluice makes it
	// an explicit processor.
	TypeKPL = "KPL"
	// TypeJSON splits concatenated or newline-separated JSON objects.
	TypeJSON = "JSON"
	// TypeDelimited splits on a custom delimiter.
	TypeDelimited = "DELIMITED"
)

// DefaultMaxSubRecords is Firehose's cap on the sub-records one record
// may be split into by JSON or DELIMITED de-aggregation ("Record
// deaggregation by JSON or by delimiter is capped at 500 per record",
// Firehose Developer Guide, "Apply dynamic partitioning to aggregated
// data").
const DefaultMaxSubRecords = 500

// Options configure a record_deaggregation processor. The YAML keys are the
// processor block's keys in a stream's configuration.
type Options struct {
	// SubRecordType is KPL, JSON or DELIMITED (Firehose's SubRecordType,
	// which has JSON and DELIMITED). Required.
	SubRecordType string `yaml:"sub_record_type"`
	// Delimiter is the DELIMITED type's delimiter as plain text, e.g.
	// "####" or "\n" (YAML double-quoted escapes apply). Exactly one of
	// Delimiter and DelimiterBase64 is required with DELIMITED.
	Delimiter string `yaml:"delimiter"`
	// DelimiterBase64 is the delimiter base64-encoded, as Firehose's
	// Delimiter parameter takes it ("IyMjIw==" for "####").
	DelimiterBase64 string `yaml:"delimiter_base64"`
	// MaxSubRecords is the most sub-records one record may yield; a
	// record with more fails whole (it is dead-lettered, not truncated).
	// Zero means the type's default: DefaultMaxSubRecords for JSON and
	// DELIMITED (Firehose's cap), no limit for KPL (Firehose documents
	// none, and the KPL puts thousands of small records in one).
	MaxSubRecords int `yaml:"max_sub_records"`
}

// DefaultOptions returns the defaults a configuration block is decoded onto.
// SubRecordType has no default: Firehose requires it.
func DefaultOptions() Options { return Options{} }

// Compiled is options that passed Compile, in the form the processor
// uses.
type Compiled struct {
	typ       string
	delimiter []byte
	max       int // 0: no limit
}

// SubRecordType is the compiled options' sub_record_type (KPL, JSON or
// DELIMITED), which decides the processor's place in the chain (see
// package transform).
func (c Compiled) SubRecordType() string { return c.typ }

// Validate reports every problem with the options at once (Compile
// without its result).
func (o Options) Validate() error {
	_, err := o.Compile()
	return err
}

// Compile validates the options, reporting every problem at once, each a
// *pipeline.OptionError at its key, and returns them compiled for New.
func (o Options) Compile() (Compiled, error) {
	var errs []error
	s := Compiled{typ: o.SubRecordType, max: o.MaxSubRecords}
	switch o.SubRecordType {
	case TypeKPL, TypeJSON, TypeDelimited:
	case "":
		errs = append(errs, pipeline.OptionErrorf("sub_record_type", "required (%s, %s or %s)", TypeKPL, TypeJSON, TypeDelimited))
	default:
		errs = append(errs, pipeline.OptionErrorf("sub_record_type", "%q is not one of %s, %s, %s", o.SubRecordType, TypeKPL, TypeJSON, TypeDelimited))
	}
	if o.MaxSubRecords < 0 {
		errs = append(errs, pipeline.OptionErrorf("max_sub_records", "%d is negative (0 means the type's default)", o.MaxSubRecords))
	}
	if s.max == 0 && o.SubRecordType != TypeKPL {
		s.max = DefaultMaxSubRecords
	}
	if o.SubRecordType == TypeDelimited {
		switch {
		case o.Delimiter != "" && o.DelimiterBase64 != "":
			errs = append(errs, pipeline.OptionErrorf("delimiter", "set only one of delimiter and delimiter_base64"))
		case o.Delimiter != "":
			s.delimiter = []byte(o.Delimiter)
		case o.DelimiterBase64 != "":
			d, err := base64.StdEncoding.DecodeString(o.DelimiterBase64)
			switch {
			case err != nil:
				errs = append(errs, pipeline.OptionErrorf("delimiter_base64", "%q is not standard base64 (as Firehose takes it, e.g. IyMjIw== for ####): %w", o.DelimiterBase64, err))
			case len(d) == 0:
				errs = append(errs, pipeline.OptionErrorf("delimiter_base64", "decodes to an empty delimiter"))
			default:
				s.delimiter = d
			}
		default:
			errs = append(errs, pipeline.OptionErrorf("delimiter", "required with sub_record_type DELIMITED (set delimiter, or delimiter_base64 as Firehose takes it)"))
		}
	} else {
		if o.Delimiter != "" {
			errs = append(errs, pipeline.OptionErrorf("delimiter", "only allowed with sub_record_type %s", TypeDelimited))
		}
		if o.DelimiterBase64 != "" {
			errs = append(errs, pipeline.OptionErrorf("delimiter_base64", "only allowed with sub_record_type %s", TypeDelimited))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Compiled{}, err
	}
	return s, nil
}
