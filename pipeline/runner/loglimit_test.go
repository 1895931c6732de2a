package runner

import (
	"testing"
	"time"
)

func TestLogLimiter(t *testing.T) {
	l := newLogLimiter(time.Minute)
	t0 := time.Now()
	if ok, n := l.allow("a", t0); !ok || n != 0 {
		t.Fatalf("first log: %v %d", ok, n)
	}
	for i := range 5 {
		if ok, _ := l.allow("a", t0.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("repeat %d within the interval allowed", i)
		}
	}
	if ok, _ := l.allow("b", t0); !ok {
		t.Error("another key was suppressed")
	}
	if ok, n := l.allow("a", t0.Add(time.Minute)); !ok || n != 5 {
		t.Errorf("after the interval: %v, suppressed %d, want true, 5", ok, n)
	}
}
