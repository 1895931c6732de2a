package retryafter

import (
	"net/http"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":          0,
		"garbage":   0,
		"-5":        0,
		"0":         0,
		" 7 ":       7 * time.Second,
		"999999999": Max,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
		now.Add(48 * time.Hour).Format(http.TimeFormat):   Max,
	} {
		if got := Parse(v, now); got != want {
			t.Errorf("Parse(%q) = %v, want %v", v, got, want)
		}
	}
}
