package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// CoordinatorOptions configure a Coordinator.
type CoordinatorOptions struct {
	Table    *Table
	Owner    string        // this worker's unique name (required)
	Duration time.Duration // lease duration (default 10 s): a lease not renewed for this long, by the observer's clock, is expired
	Renew    time.Duration // renewal interval of held leases (default Duration/3)
	Take     time.Duration // interval between List+Plan+Take rounds (default Duration/2)
	Logger   *slog.Logger  // default: discards
	// Event, if set, is told of "taken", "lost", "released", "stolen" (a lease this worker took from a live other owner) with the shard id, for metrics.
	Event func(kind, shard string)

	// noRelease makes Run end without releasing the leases still held,
	// as a killed worker would: tests of failover only.
	noRelease bool
}

// Held is a lease this worker holds, handed to Start.
type Held struct {
	Shard      string
	Checkpoint string // the row's checkpoint at take time ("" none)
	Pending    string // the row's pending sequence number at take time (Lease.Pending)
	Parents    []string
}

// Handler is what the coordinator drives; the caller implements it.
type Handler interface {
	// Start is called (in its own goroutine per shard, by the coordinator) when this worker has taken a lease; ctx is cancelled as soon as the lease is lost, released or the coordinator stops; Start should return when ctx ends. A nil return after shard end is normal (see Coordinator.Finish). Start's error is logged and the lease released.
	Start(ctx context.Context, h Held) error
}

// Coordinator runs one worker's side of the fleet sharing a stream's
// leases: it renews the leases this worker holds, takes new ones as Plan
// says, and starts and stops the reading of their shards (Handler.Start).
//
// The owner name must be unique among live workers: a row in this
// worker's name is taken to be written by no one else, so a row left in
// its name (by a lease it gave up without releasing, or by an earlier
// run under the same name) is taken at once, and a counter found moved
// on a row still in its name is adopted rather than deemed lost.
//
// A held lease is lost when its counter is found moved (another worker
// took it) or when it could not be renewed for the lease duration, by this
// worker's monotonic clock from the start of its last successful write:
// the other workers, judging by their own clocks from when they saw that
// write, cannot have found it expired before then. Either way its Start's
// ctx is cancelled at once.
type Coordinator struct {
	o     CoordinatorOptions
	log   *slog.Logger
	watch *Watch // the take loop's alone

	mu      sync.Mutex
	held    map[string]*holding // the leases this worker holds, by shard
	running map[string]bool     // shards whose Start goroutine has not returned
	ran     bool

	bg     sync.WaitGroup // renewals in flight
	starts sync.WaitGroup // Start goroutines
}

// holding is one held lease.
type holding struct {
	shard  string
	cancel context.CancelFunc // ends its Start's ctx

	// op serializes the lease's writes (take aside), each at the counter
	// the one before left, so renewals and checkpoints never fence each
	// other out.
	op sync.Mutex

	// Under Coordinator.mu:
	counter  int64
	renewed  time.Time // start of the last successful write
	renewing bool      // a renewal is in flight
	gone     bool      // no longer held: lost, released or finished
}

// NewCoordinator checks o and fills in its defaults.
func NewCoordinator(o CoordinatorOptions) (*Coordinator, error) {
	switch {
	case o.Table == nil:
		return nil, errors.New("lease coordinator: no lease table")
	case o.Owner == "":
		return nil, errors.New("lease coordinator: no owner name")
	case o.Duration < 0 || o.Renew < 0 || o.Take < 0:
		return nil, fmt.Errorf("lease coordinator %s: negative interval (duration %v, renew %v, take %v)", o.Owner, o.Duration, o.Renew, o.Take)
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Renew == 0 {
		o.Renew = o.Duration / 3
	}
	if o.Take == 0 {
		o.Take = o.Duration / 2
	}
	if o.Renew >= o.Duration {
		return nil, fmt.Errorf("lease coordinator %s: renewal interval %v is not shorter than the lease duration %v", o.Owner, o.Renew, o.Duration)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{
		o:       o,
		log:     log.With("owner", o.Owner),
		watch:   NewWatch(o.Duration),
		held:    map[string]*holding{},
		running: map[string]bool{},
	}, nil
}

// Run renews and takes until ctx ends, then cancels every Start, waits for them to return, and releases the leases still held (best effort, short timeout) so others take them at once. Returns nil on ctx end.
func (c *Coordinator) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return fmt.Errorf("lease coordinator %s: no handler", c.o.Owner)
	}
	c.mu.Lock()
	ran := c.ran
	c.ran = true
	c.mu.Unlock()
	if ran {
		return fmt.Errorf("lease coordinator %s: Run called twice", c.o.Owner)
	}
	c.log.Info("lease coordinator started", "duration", c.o.Duration, "renew", c.o.Renew, "take", c.o.Take)
	var loops sync.WaitGroup
	loops.Go(func() { c.renewLoop(ctx) })
	loops.Go(func() { c.takeLoop(ctx, h) })
	<-ctx.Done()
	loops.Wait()
	c.bg.Wait()
	// Every Start's ctx derives from ctx, so all of them are ending.
	c.starts.Wait()

	c.mu.Lock()
	rest := make([]*holding, 0, len(c.held))
	for _, e := range c.held {
		rest = append(rest, e)
	}
	if c.o.noRelease {
		for _, e := range rest {
			c.forget(e)
		}
		rest = nil
	}
	c.mu.Unlock()
	var releases sync.WaitGroup
	for _, e := range rest {
		releases.Go(func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Renew)
			defer cancel()
			c.release(rctx, e)
		})
	}
	releases.Wait()
	c.log.Info("lease coordinator stopped", "held_at_stop", len(rest))
	return nil
}

// Checkpoint records seq as shard's checkpoint, conditional on the counter this worker holds (it uses and updates the coordinator's current counter under its lock, so renewals and checkpoints don't fence each other out). ErrLost (wrapped) if the lease is no longer held — and then the shard's Start ctx is cancelled.
func (c *Coordinator) Checkpoint(ctx context.Context, shard, seq string) error {
	e, err := c.lookup("checkpoint", shard)
	if err != nil {
		return err
	}
	return c.write(ctx, e, func(ctx context.Context, l Lease) (int64, error) {
		return c.o.Table.Checkpoint(ctx, l, c.o.Owner, seq)
	})
}

// Intend records seq as the last sequence number of shard this worker is
// about to buffer (Table.Intend), fenced like Checkpoint.
func (c *Coordinator) Intend(ctx context.Context, shard, seq string) error {
	e, err := c.lookup("intend", shard)
	if err != nil {
		return err
	}
	return c.write(ctx, e, func(ctx context.Context, l Lease) (int64, error) {
		return c.o.Table.Intend(ctx, l, c.o.Owner, seq)
	})
}

// Finish records shard as read to its end (checkpoint Finished), creates the rows of its children (children map: child shard id → its parent ids, as in Ensure) so they become takeable, and releases the lease. Called by the caller's Start at shard end before it returns nil.
//
// The children's rows are created first: until the parent's row says
// Finished they are not readable (Plan), and a worker dying between the
// two steps leaves the parent to be read to its end again rather than
// children without rows. A failure of the release alone is logged, not
// returned: the shard is durably finished, and a finished lease is never
// planned again.
func (c *Coordinator) Finish(ctx context.Context, shard string, children map[string][]string) error {
	e, err := c.lookup("finish", shard)
	if err != nil {
		return err
	}
	if len(children) > 0 {
		if err := c.o.Table.Ensure(ctx, children); err != nil {
			return fmt.Errorf("lease owner %s: finish shard %s: children: %w", c.o.Owner, shard, err)
		}
	}
	err = c.write(ctx, e, func(ctx context.Context, l Lease) (int64, error) {
		return c.o.Table.Checkpoint(ctx, l, c.o.Owner, Finished)
	})
	if err != nil {
		return fmt.Errorf("finish shard %s: %w", shard, err)
	}
	// The release cancels the Start's ctx, which ctx may well be.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Renew)
	defer cancel()
	c.release(rctx, e)
	return nil
}

// Held returns the shard ids this worker currently holds, sorted (for metrics/status).
func (c *Coordinator) Held() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.held))
	for s := range c.held {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func (c *Coordinator) event(kind, shard string) {
	if c.o.Event != nil {
		c.o.Event(kind, shard)
	}
}

func (c *Coordinator) lookup(op, shard string) (*holding, error) {
	c.mu.Lock()
	e := c.held[shard]
	c.mu.Unlock()
	if e == nil {
		return nil, fmt.Errorf("lease owner %s: %s shard %s: not held: %w", c.o.Owner, op, shard, ErrLost)
	}
	return e, nil
}

// forget marks e no longer held and cancels its Start. Under c.mu.
func (c *Coordinator) forget(e *holding) {
	e.gone = true
	if c.held[e.shard] == e {
		delete(c.held, e.shard)
	}
	e.cancel()
}

// write runs fn on e's row at the counter this worker holds, after e's
// other writes, and keeps the new counter. ErrLost (the counter moved, or
// e is no longer held) forgets e and cancels its Start, unless the row is
// still in this worker's name (see unheard): then fn is retried once at
// the row's counter.
func (c *Coordinator) write(ctx context.Context, e *holding, fn func(context.Context, Lease) (int64, error)) error {
	e.op.Lock()
	defer e.op.Unlock()
	c.mu.Lock()
	if e.gone {
		c.mu.Unlock()
		return fmt.Errorf("lease owner %s: shard %s: not held: %w", c.o.Owner, e.shard, ErrLost)
	}
	l := Lease{Shard: e.shard, Counter: e.counter}
	c.mu.Unlock()
	at := time.Now()
	next, err := fn(ctx, l)
	if errors.Is(err, ErrLost) {
		if cur, ok := c.unheard(ctx, l); ok {
			l.Counter = cur
			next, err = fn(ctx, l)
		}
	}
	c.mu.Lock()
	switch {
	case err == nil:
		// Also when e was given up meanwhile (not renewed in time): the
		// write was fenced, so it stands, but e stays given up.
		e.counter = next
		if !e.gone {
			e.renewed = at
		}
		c.mu.Unlock()
		return nil
	case errors.Is(err, ErrLost):
		lost := !e.gone
		if lost {
			c.forget(e)
		}
		c.mu.Unlock()
		if lost {
			c.log.Warn("lease lost: its counter moved", "shard", e.shard, "err", err)
			c.event("lost", e.shard)
		}
	default:
		c.mu.Unlock()
	}
	return fmt.Errorf("lease owner %s: %w", c.o.Owner, err)
}

// unheard tells whether l's row, whose counter was found moved from
// l.Counter, is still in this worker's name: then only writes of its own
// moved it (a write whose answer it never got: cancelled or timed out
// after PostgreSQL ran it), since a take by another worker would have
// changed the owner, and unheard returns the row's counter to write at.
func (c *Coordinator) unheard(ctx context.Context, l Lease) (int64, bool) {
	row, err := c.o.Table.get(ctx, l.Shard)
	if err != nil || row.Owner != c.o.Owner || row.Counter == l.Counter {
		return 0, false
	}
	c.log.Info("lease counter moved by a write of this worker's whose answer was lost", "shard", l.Shard, "counter", l.Counter, "row_counter", row.Counter)
	return row.Counter, true
}

// get reads shard's row.
func (t *Table) get(ctx context.Context, shard string) (Lease, error) {
	l := Lease{Shard: shard}
	err := t.pool.QueryRow(ctx, `SELECT owner, counter, checkpoint, parents FROM `+t.table+` WHERE stream = $1 AND shard = $2`,
		t.stream, shard).Scan(&l.Owner, &l.Counter, &l.Checkpoint, &l.Parents)
	if err != nil {
		return Lease{}, fmt.Errorf("lease table %s: read shard %s: %w", t.table, shard, err)
	}
	return l, nil
}

// release gives e up: forgets it, cancels its Start, and releases its row
// so that another worker may take it at once. No-op if e is not held.
func (c *Coordinator) release(ctx context.Context, e *holding) {
	e.op.Lock()
	defer e.op.Unlock()
	c.mu.Lock()
	if e.gone {
		c.mu.Unlock()
		return
	}
	c.forget(e)
	l := Lease{Shard: e.shard, Counter: e.counter}
	c.mu.Unlock()
	_, err := c.o.Table.Release(ctx, l)
	if errors.Is(err, ErrLost) {
		if cur, ok := c.unheard(ctx, l); ok {
			l.Counter = cur
			_, err = c.o.Table.Release(ctx, l)
		}
	}
	if err != nil {
		// Lost meanwhile, or PostgreSQL unreachable: the lease then expires.
		c.log.Warn("lease release failed", "shard", e.shard, "err", err)
		return
	}
	c.log.Info("lease released", "shard", e.shard)
	c.event("released", e.shard)
}

// renewLoop renews the held leases every Renew interval, and gives up
// each one the moment it has gone a lease duration without a successful
// write.
func (c *Coordinator) renewLoop(ctx context.Context) {
	tick := time.NewTicker(c.o.Renew)
	defer tick.Stop()
	expiry := time.NewTimer(c.o.Duration)
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.renewAll(ctx)
		case <-expiry.C:
		}
		expiry.Reset(c.expire())
	}
}

// renewAll starts a renewal of every held lease that has none in flight.
func (c *Coordinator) renewAll(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.held {
		if e.renewing {
			continue
		}
		e.renewing = true
		c.bg.Go(func() { c.renew(ctx, e) })
	}
}

func (c *Coordinator) renew(ctx context.Context, e *holding) {
	rctx, cancel := context.WithTimeout(ctx, c.o.Renew)
	err := c.write(rctx, e, func(ctx context.Context, l Lease) (int64, error) {
		return c.o.Table.Renew(ctx, l, c.o.Owner)
	})
	cancel()
	c.mu.Lock()
	e.renewing = false
	since := time.Since(e.renewed)
	c.mu.Unlock()
	if err != nil && !errors.Is(err, ErrLost) && ctx.Err() == nil {
		c.log.Warn("lease renewal failed", "shard", e.shard, "since_renewed", since, "err", err)
	}
}

// expire gives up the leases not written for the lease duration and
// returns how long until the next one would be.
func (c *Coordinator) expire() time.Duration {
	now := time.Now()
	next := c.o.Duration
	var lost []string
	c.mu.Lock()
	for _, e := range c.held {
		left := e.renewed.Add(c.o.Duration).Sub(now)
		if left <= 0 {
			c.forget(e)
			lost = append(lost, e.shard)
			continue
		}
		next = min(next, left)
	}
	c.mu.Unlock()
	for _, s := range lost {
		c.log.Warn("lease lost: not renewed within the lease duration", "shard", s, "duration", c.o.Duration)
		c.event("lost", s)
	}
	return next
}

// takeLoop runs a take round at once and then every Take interval.
func (c *Coordinator) takeLoop(ctx context.Context, h Handler) {
	tick := time.NewTicker(c.o.Take)
	defer tick.Stop()
	for {
		c.round(ctx, h)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// round lists the leases, plans and takes; each lease taken gets its
// Start.
func (c *Coordinator) round(ctx context.Context, h Handler) {
	lctx, cancel := context.WithTimeout(ctx, c.o.Duration)
	leases, err := c.o.Table.List(lctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("lease take round failed", "err", err)
		}
		return
	}
	c.mu.Lock()
	for i, l := range leases {
		// A row in this worker's name that it does not hold (given up
		// unreleased, or left by a previous run under the same name) is
		// read by no one: it is free.
		if l.Owner == c.o.Owner && c.held[l.Shard] == nil {
			leases[i].Owner = ""
		}
	}
	c.mu.Unlock()
	expired := c.watch.Expired(leases)
	isExpired := make(map[string]bool, len(expired))
	for _, l := range expired {
		isExpired[l.Shard] = true
	}
	for _, l := range Plan(leases, expired, c.o.Owner) {
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		busy := c.held[l.Shard] != nil || c.running[l.Shard]
		c.mu.Unlock()
		if busy {
			continue // its previous Start has not returned yet
		}
		at := time.Now()
		tctx, cancel := context.WithTimeout(ctx, c.o.Duration)
		next, err := c.o.Table.Take(tctx, l, c.o.Owner)
		cancel()
		if errors.Is(err, ErrLost) {
			c.log.Debug("lease take lost the race", "shard", l.Shard)
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("lease take failed", "shard", l.Shard, "err", err)
			}
			continue
		}
		kind := "taken"
		if l.Owner != "" && !isExpired[l.Shard] {
			kind = "stolen"
		}
		c.log.Info("lease "+kind, "shard", l.Shard, "from", l.Owner, "checkpoint", l.Checkpoint)
		c.start(ctx, h, l, next, at)
		c.event(kind, l.Shard) // after start: Held includes it

	}
}

// start holds l (taken at counter, by a write started at at) and runs its
// Start.
func (c *Coordinator) start(ctx context.Context, h Handler, l Lease, counter int64, at time.Time) {
	sctx, cancel := context.WithCancel(ctx)
	e := &holding{shard: l.Shard, cancel: cancel, counter: counter, renewed: at}
	held := Held{Shard: l.Shard, Checkpoint: l.Checkpoint, Pending: l.Pending, Parents: slices.Clone(l.Parents)}
	c.mu.Lock()
	c.held[l.Shard] = e
	c.running[l.Shard] = true
	c.mu.Unlock()
	c.starts.Go(func() {
		defer func() {
			c.mu.Lock()
			delete(c.running, l.Shard)
			c.mu.Unlock()
		}()
		defer cancel()
		err := h.Start(sctx, held)
		if err != nil && sctx.Err() == nil {
			c.log.Error("shard reader failed", "shard", l.Shard, "err", err)
		} else if err != nil {
			c.log.Debug("shard reader ended", "shard", l.Shard, "err", err)
		}
		if ctx.Err() != nil {
			return // Run releases what is still held, once every Start is done
		}
		// Still held (not lost, not finished): let it be planned again.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Renew)
		defer rcancel()
		c.release(rctx, e)
	})
}
