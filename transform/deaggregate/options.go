package deaggregate

import (
	"encoding/base64"
	"errors"
	"fmt"
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

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	_, err := o.compile()
	return err
}

// settings are validated options in the form the processor uses.
type settings struct {
	typ       string
	delimiter []byte
	max       int // 0: no limit
}

func (o Options) compile() (settings, error) {
	var errs []error
	s := settings{typ: o.SubRecordType, max: o.MaxSubRecords}
	switch o.SubRecordType {
	case TypeKPL, TypeJSON, TypeDelimited:
	case "":
		errs = append(errs, fmt.Errorf("sub_record_type: required (%s, %s or %s)", TypeKPL, TypeJSON, TypeDelimited))
	default:
		errs = append(errs, fmt.Errorf("sub_record_type: %q is not one of %s, %s, %s", o.SubRecordType, TypeKPL, TypeJSON, TypeDelimited))
	}
	if o.MaxSubRecords < 0 {
		errs = append(errs, fmt.Errorf("max_sub_records: %d is negative (0 means the type's default)", o.MaxSubRecords))
	}
	if s.max == 0 && o.SubRecordType != TypeKPL {
		s.max = DefaultMaxSubRecords
	}
	if o.SubRecordType == TypeDelimited {
		switch {
		case o.Delimiter != "" && o.DelimiterBase64 != "":
			errs = append(errs, errors.New("delimiter and delimiter_base64: set only one of them"))
		case o.Delimiter != "":
			s.delimiter = []byte(o.Delimiter)
		case o.DelimiterBase64 != "":
			d, err := base64.StdEncoding.DecodeString(o.DelimiterBase64)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("delimiter_base64: %q is not standard base64 (as Firehose takes it, e.g. IyMjIw== for ####): %w", o.DelimiterBase64, err))
			case len(d) == 0:
				errs = append(errs, errors.New("delimiter_base64: decodes to an empty delimiter"))
			default:
				s.delimiter = d
			}
		default:
			errs = append(errs, errors.New("delimiter: required with sub_record_type DELIMITED (set delimiter, or delimiter_base64 as Firehose takes it)"))
		}
	} else {
		if o.Delimiter != "" {
			errs = append(errs, fmt.Errorf("delimiter: only allowed with sub_record_type %s", TypeDelimited))
		}
		if o.DelimiterBase64 != "" {
			errs = append(errs, fmt.Errorf("delimiter_base64: only allowed with sub_record_type %s", TypeDelimited))
		}
	}
	return s, errors.Join(errs...)
}
