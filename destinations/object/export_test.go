package object

import "time"

// SetNow replaces the writer's clock (the attemptEndingTimestamp of dead
// letters), for tests.
func (w *Writer) SetNow(now func() time.Time) { w.now = now }
