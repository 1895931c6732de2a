// Package transformtest holds test helpers shared by the processors'
// tests.
package transformtest

import (
	"errors"

	"github.com/sluice-dev/sluice/pipeline"
)

// OptionKeys walks the error an Options.Compile or Validate returned
// (errors.Join trees, at any depth) and returns the Key of every
// *pipeline.OptionError in it, in order, and every other error, which
// Validate must not return: each problem belongs to a key.
func OptionKeys(err error) (keys []string, other []error) {
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var oe *pipeline.OptionError
		if errors.As(err, &oe) {
			keys = append(keys, oe.Key)
			return
		}
		other = append(other, err)
	}
	walk(err)
	return keys, other
}
