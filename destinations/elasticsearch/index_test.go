package elasticsearch

import (
	"math/rand/v2"
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

// TestIndexNamesAgree: the per-period memo gives IndexName's answer for
// times in order, out of order, on period boundaries, in other zones and
// before 1970.
func TestIndexNamesAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2016, 2, 28, 22, 59, 59, 0, time.UTC)
	var times []time.Time
	for i := range 2000 {
		d := time.Duration(r.Int64N(int64(40*24*time.Hour))) - 20*24*time.Hour
		if i%3 == 0 { // near hour and day boundaries
			d = time.Duration(i/3)*time.Hour + time.Duration(r.IntN(3)-1)*time.Second
		}
		tm := base.Add(d)
		if i%5 == 0 {
			tm = tm.In(time.FixedZone("x", -7*3600))
		}
		times = append(times, tm)
	}
	times = append(times, time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), time.Unix(0, 0), time.Unix(-1, 0), time.Unix(3599, 0), time.Unix(3600, 0))
	for _, rot := range []string{NoRotation, OneHour, OneDay, OneWeek, OneMonth} {
		n := newIndexNames("idx", rot)
		for _, tm := range times {
			if got, want := n.of(tm), IndexName("idx", rot, tm); got != want {
				t.Fatalf("%s at %v: %s, want %s", rot, tm, got, want)
			}
		}
	}
}
