package s3

import (
	"fmt"
	"strings"
)

// validatePrefixes checks prefix and error_output_prefix.
func validatePrefixes(o Options) []error {
	var errs []error
	check := func(name, p string) {
		switch {
		case len(p) > maxPrefixLen:
			errs = append(errs, fmt.Errorf("%s: %d characters, at most %d", name, len(p), maxPrefixLen))
		case strings.Contains(p, "!{"):
			errs = append(errs, fmt.Errorf("%s: %q: expressions (!{...}) are not supported yet", name, p))
		case strings.HasPrefix(p, "/"):
			errs = append(errs, fmt.Errorf("%s: %q must not start with '/'", name, p))
		}
	}
	check("prefix", o.Prefix)
	check("error_output_prefix", o.ErrorOutputPrefix)
	if o.Prefix != "" && o.Prefix == o.errorPrefix() {
		errs = append(errs, fmt.Errorf("error_output_prefix: must differ from prefix %q", o.Prefix))
	}
	return errs
}
