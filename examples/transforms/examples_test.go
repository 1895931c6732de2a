package transforms_test

import (
	"testing"
)

func TestPassThrough(t *testing.T) {
	in := []string{`{"a":1}`, "", "not json \x00\xff"}
	for i, r := range run(t, "passthrough", nil, in...) {
		wantOK(t, r, in[i])
	}
}
