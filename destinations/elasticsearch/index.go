package elasticsearch

import (
	"fmt"
	"time"
)

// Index rotation periods (Firehose's IndexRotationPeriod).
const (
	NoRotation = "NoRotation"
	OneHour    = "OneHour"
	OneDay     = "OneDay"
	OneWeek    = "OneWeek"
	OneMonth   = "OneMonth"
)

// IndexName is the index of a record that arrived at t under base with
// rotation, in UTC, with Firehose's suffixes: myindex, myindex-2016-02-25-13,
// myindex-2016-02-25, myindex-2016-w08, myindex-2016-02.
func IndexName(base, rotation string, t time.Time) string {
	t = t.UTC()
	switch rotation {
	case OneHour:
		return base + t.Format("-2006-01-02-15")
	case OneDay:
		return base + t.Format("-2006-01-02")
	case OneWeek:
		y, w := firehoseWeek(t)
		return fmt.Sprintf("%s-%04d-w%02d", base, y, w)
	case OneMonth:
		return base + t.Format("-2006-01")
	}
	return base
}

// indexNames remembers the index name of the last rotation period asked
// for: a batch's records arrive within one period or a few, so the name
// is formatted once per period instead of once per record.
type indexNames struct {
	base, rotation string
	period         int64 // the hour (OneHour) or UTC day of name; -1: none yet
	name           string
}

func newIndexNames(base, rotation string) indexNames {
	return indexNames{base: base, rotation: rotation, period: -1, name: base}
}

// of is IndexName(base, rotation, t).
func (n *indexNames) of(t time.Time) string {
	sec := t.Unix()
	switch {
	case n.rotation == NoRotation || n.rotation == "":
		return n.base
	case sec < 0:
		return IndexName(n.base, n.rotation, t) // before 1970: division rounds the wrong way
	}
	p := sec / 86400 // UTC hours and days start at multiples of the epoch's
	if n.rotation == OneHour {
		p = sec / 3600
	}
	if p != n.period {
		n.period, n.name = p, IndexName(n.base, n.rotation, t)
	}
	return n.name
}

// firehoseWeek is the week of Firehose's OneWeek suffix: the ISO 8601
// week and its week-based year, which gives Firehose's documented example
// (2016-02-25 is w08). The contract notes "weeks start Sunday; week 1 =
// first week containing a Saturday", which would make that day w09 (or,
// counting full weeks from the first Sunday, w08 too but with Sundays
// starting weeks); the documented example decides, and no live service
// was checked.
func firehoseWeek(t time.Time) (year, week int) { return t.ISOWeek() }
