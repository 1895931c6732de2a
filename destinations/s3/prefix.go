package s3

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/destinations/format/prefix"
)

// spec parses prefix and error_output_prefix with Firehose's rules
// (package format/prefix). Dynamic partitioning is on exactly when the
// prefix uses partition keys (!{partitionKeyFromQuery:k},
// !{partitionKeyFromLambda:k}).
func (o Options) spec() (*prefix.Spec, error) {
	loc, tzErr := prefix.LoadTimeZone(o.CustomTimeZone)
	if tzErr != nil {
		tzErr = fmt.Errorf("custom_time_zone: %w", tzErr)
		loc = time.UTC // to report the other problems too
	}
	ext := o.FileExtension
	if ext == "" {
		ext = defaultExt(o)
	}
	dynamic := strings.Contains(o.Prefix, "!{partitionKeyFrom")
	spec, err := prefix.Parse(o.Prefix, o.errorPrefix(), prefix.Options{DynamicPartitioning: dynamic, TimeZone: loc, FileExtension: ext})
	if err != nil {
		if o.ErrorOutputPrefix == "" && strings.Contains(o.Prefix, "!{") {
			err = fmt.Errorf("%w (error_output_prefix defaults to %q; with expressions in prefix set one such as \"errors/!{firehose:error-output-type}/\")", err, DefaultErrorOutputPrefix)
		}
		return nil, errors.Join(tzErr, fmt.Errorf("prefix, error_output_prefix, file_extension: %w", err))
	}
	if tzErr != nil {
		return nil, tzErr
	}
	return spec, nil
}

// validatePrefixes checks prefix, error_output_prefix, custom_time_zone and
// file_extension together.
func validatePrefixes(o Options) []error {
	var errs []error
	if strings.HasPrefix(o.Prefix, "/") {
		errs = append(errs, fmt.Errorf("prefix: %q must not start with '/' (S3 keys have no leading slash)", o.Prefix))
	}
	if strings.HasPrefix(o.ErrorOutputPrefix, "/") {
		errs = append(errs, fmt.Errorf("error_output_prefix: %q must not start with '/'", o.ErrorOutputPrefix))
	}
	if _, err := o.spec(); err != nil {
		errs = append(errs, err)
	}
	if o.Prefix != "" && !strings.Contains(o.Prefix, "!{") && o.Prefix == o.errorPrefix() {
		errs = append(errs, fmt.Errorf("error_output_prefix: must differ from prefix %q", o.Prefix))
	}
	return errs
}
