package elasticsearch

import (
	"testing"
	"time"
)

// TestIndexName checks Firehose's documented examples (2016-02-25T13:00:00Z,
// base myindex) and week boundaries.
func TestIndexName(t *testing.T) {
	at := time.Date(2016, 2, 25, 13, 0, 0, 0, time.UTC)
	for rot, want := range map[string]string{
		NoRotation: "myindex", OneHour: "myindex-2016-02-25-13", OneDay: "myindex-2016-02-25",
		OneWeek: "myindex-2016-w08", OneMonth: "myindex-2016-02",
	} {
		if got := IndexName("myindex", rot, at); got != want {
			t.Errorf("%s: %s, want %s", rot, got, want)
		}
	}
	// The zone of the arrival time does not matter: UTC.
	if got := IndexName("i", OneHour, at.In(time.FixedZone("x", 5*3600+1800))); got != "i-2016-02-25-13" {
		t.Errorf("zone: %s", got)
	}
	for _, c := range []struct {
		day  string
		want string
	}{
		{"2016-01-01", "i-2015-w53"}, // a Friday: ISO week 53 of 2015
		{"2016-01-04", "i-2016-w01"}, // Monday starts week 1
		{"2016-02-28", "i-2016-w08"},
		{"2016-02-29", "i-2016-w09"},
		{"2018-12-31", "i-2019-w01"},
	} {
		d, _ := time.Parse("2006-01-02", c.day)
		if got := IndexName("i", OneWeek, d.Add(12*time.Hour)); got != c.want {
			t.Errorf("%s: %s, want %s", c.day, got, c.want)
		}
	}
}
