package transform

import (
	"slices"
	"testing"
)

func TestSubRecordIDs(t *testing.T) {
	got := SubRecordIDs("abc", 12, []string{"keep"})
	want := []string{"keep", "abc-0", "abc-1", "abc-2", "abc-3", "abc-4", "abc-5", "abc-6", "abc-7", "abc-8", "abc-9", "abc-10", "abc-11"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	if got := SubRecordIDs("x", 0, nil); len(got) != 0 {
		t.Fatalf("n=0: %v", got)
	}
}
