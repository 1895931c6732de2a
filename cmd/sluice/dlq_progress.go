package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// replayProgress reports a replay's progress: on a terminal a bar redrawn
// in place at most every 100 ms, otherwise a plain line every `every`.
type replayProgress struct {
	w     io.Writer
	tty   bool
	every time.Duration
	total int
	// from is the acknowledged count when this invocation started, for
	// the rate.
	from  int
	start time.Time
	last  time.Time
	drawn bool
}

func newReplayProgress(w io.Writer, tty bool, every time.Duration, total, from int) *replayProgress {
	now := time.Now()
	return &replayProgress{w: w, tty: tty, every: every, total: total, from: from, start: now, last: now}
}

func (p *replayProgress) rate(done int, now time.Time) float64 {
	s := now.Sub(p.start).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(done-p.from) / s
}

// update reports done acknowledged records, if it is time to.
func (p *replayProgress) update(done int) {
	now := time.Now()
	interval := p.every
	if p.tty {
		interval = 100 * time.Millisecond
	}
	if now.Sub(p.last) < interval {
		return
	}
	p.last = now
	p.draw(done, now)
}

func (p *replayProgress) draw(done int, now time.Time) {
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	rate := p.rate(done, now)
	if !p.tty {
		fmt.Fprintf(p.w, "replayed %d/%d records (%.0f%%), %.0f records/s\n", done, p.total, pct, rate)
		return
	}
	const width = 30
	fill := width
	if p.total > 0 {
		fill = done * width / p.total
	}
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	eta := ""
	if rate > 0 && done < p.total {
		eta = fmt.Sprintf("  ETA %s", time.Duration(float64(time.Second)*float64(p.total-done)/rate).Round(time.Second))
	}
	fmt.Fprintf(p.w, "\r[%s] %d/%d records %3.0f%%  %.0f rec/s%s\x1b[K", bar, done, p.total, pct, rate, eta)
	p.drawn = true
}

// finish draws the final state and ends the bar's line.
func (p *replayProgress) finish(done int) {
	if p.tty {
		p.draw(done, time.Now())
		if p.drawn {
			fmt.Fprintln(p.w)
		}
	}
}
