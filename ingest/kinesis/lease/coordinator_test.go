package lease

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/deploy/testpeers/pgproxy"
)

// Short leases, so that failover takes well under a second.
const (
	testDuration = 600 * time.Millisecond
	testRenew    = 150 * time.Millisecond
	testTake     = 200 * time.Millisecond
)

// sharedTable opens a lease table on a fresh schema and returns it with
// the schema's DSN and name, for other workers to open it through their
// own pools.
func sharedTable(t *testing.T) (tab *Table, dsn, schema string) {
	t.Helper()
	dsn, schema = testpeers.PostgresSchema(t, "coord")
	tab = tableOn(t, dsn, schema)
	t.Cleanup(func() { noLeaks(t) }) // after the workers' stops
	return tab, dsn, schema
}

// noLeaks fails the test if a goroutine of a coordinator, or a Start, is
// still there (each worker's Run has returned by now).
func noLeaks(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "lease.(*Coordinator)") || strings.Contains(g, "lease.(*worker).Start") {
			t.Errorf("goroutine left after Run returned:\n%s", g)
		}
	}
}

func tableOn(t *testing.T, dsn, schema string) *Table {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tab, err := Open(ctx, pool, schema, "kinesis_leases", "clicks")
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func ensure(t *testing.T, tab *Table, shards ...string) {
	t.Helper()
	m := map[string][]string{}
	for _, s := range shards {
		m[s] = nil
	}
	if err := tab.Ensure(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func rows(t *testing.T, tab *Table) map[string]Lease {
	t.Helper()
	ls, err := tab.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Lease{}
	for _, l := range ls {
		m[l.Shard] = l
	}
	return m
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// start is one Start call as the handler saw it.
type start struct {
	held  Held
	ctx   context.Context
	ended chan struct{} // closed when Start returned
}

// worker is a coordinator under test with a recording handler.
type worker struct {
	c       *Coordinator
	onStart func(ctx context.Context, w *worker, h Held) error // nil: wait for ctx

	mu     sync.Mutex
	starts []*start
	active int
	events []string // "kind shard"

	cancel context.CancelFunc
	done   chan error
}

func (w *worker) Start(ctx context.Context, h Held) error {
	s := &start{held: h, ctx: ctx, ended: make(chan struct{})}
	w.mu.Lock()
	w.starts = append(w.starts, s)
	w.active++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.active--
		w.mu.Unlock()
		close(s.ended)
	}()
	if w.onStart != nil {
		return w.onStart(ctx, w, h)
	}
	<-ctx.Done()
	return nil
}

// startsOf returns the Start calls for shard, oldest first.
func (w *worker) startsOf(shard string) []*start {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*start
	for _, s := range w.starts {
		if s.held.Shard == shard {
			out = append(out, s)
		}
	}
	return out
}

func (w *worker) evs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}

func (w *worker) saw(event string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.events, event)
}

// run starts a coordinator for owner; it is stopped (and checked for
// leaked Starts) when the test ends unless stopped before.
func run(t *testing.T, tab *Table, owner string, w *worker, tweak func(*CoordinatorOptions)) *worker {
	t.Helper()
	o := CoordinatorOptions{
		Table: tab, Owner: owner, Duration: testDuration, Renew: testRenew, Take: testTake,
		Logger: testLogger(t).With("test_worker", owner),
		Event: func(kind, shard string) {
			w.mu.Lock()
			w.events = append(w.events, kind+" "+shard)
			w.mu.Unlock()
		},
	}
	if tweak != nil {
		tweak(&o)
	}
	c, err := NewCoordinator(o)
	if err != nil {
		t.Fatal(err)
	}
	w.c = c
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- c.Run(ctx, w) }()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop ends Run and checks that it returned nil with every Start
// returned and nothing held.
func (w *worker) stop(t *testing.T) {
	t.Helper()
	if w.done == nil {
		return
	}
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("%s: Run: %v", w.c.o.Owner, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: Run did not return", w.c.o.Owner)
	}
	w.done = nil
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.active != 0 {
		t.Errorf("%s: %d Start calls still running after Run returned", w.c.o.Owner, w.active)
	}
	if h := w.c.Held(); len(h) != 0 {
		t.Errorf("%s: still holds %v after Run returned", w.c.o.Owner, h)
	}
}

// owners counts the rows by owner.
func owners(t *testing.T, tab *Table) map[string]int {
	n := map[string]int{}
	for _, l := range rows(t, tab) {
		n[l.Owner]++
	}
	return n
}

// TestCoordinatorBalances: two workers over four shards hold two each; a
// third joining steals, to 2/1/1 (target ceil(4/3) = 2), every shard read
// by exactly the worker whose name its row bears.
func TestCoordinatorBalances(t *testing.T) {
	tab, _, _ := sharedTable(t)
	ensure(t, tab, "shard-0", "shard-1", "shard-2", "shard-3")
	a := run(t, tab, "a", &worker{}, nil)
	b := run(t, tab, "b", &worker{}, nil)
	eventually(t, 5*time.Second, "a and b hold two shards each", func() bool {
		n := owners(t, tab)
		return len(a.c.Held()) == 2 && len(b.c.Held()) == 2 && n["a"] == 2 && n["b"] == 2
	})
	c := run(t, tab, "c", &worker{}, nil)
	ws := []*worker{a, b, c}
	balanced := func() bool {
		total := 0
		for _, w := range ws {
			h := len(w.c.Held())
			if h < 1 || h > 2 {
				return false
			}
			total += h
		}
		n := owners(t, tab)
		return total == 4 && n[""] == 0 && n["a"] == len(a.c.Held()) && n["b"] == len(b.c.Held()) && n["c"] == len(c.c.Held())
	}
	eventually(t, 5*time.Second, "2/1/1 over a, b and c", balanced)
	// Stable: a few more rounds change nothing.
	time.Sleep(3 * testTake)
	if !balanced() {
		t.Fatalf("not stable: a %v, b %v, c %v", a.c.Held(), b.c.Held(), c.c.Held())
	}
	if !slices.ContainsFunc(c.evs(), func(e string) bool { return strings.HasPrefix(e, "stolen ") }) {
		t.Errorf("c's events %v: want a steal", c.evs())
	}
	// Each worker reads exactly the shards it holds: the victim's Start
	// for the stolen shard ended.
	eventually(t, 2*time.Second, "one running Start per held lease", func() bool {
		for _, w := range ws {
			w.mu.Lock()
			active := w.active
			w.mu.Unlock()
			if active != len(w.c.Held()) {
				return false
			}
		}
		return true
	})
}

// TestCoordinatorFailover: a worker killed without releasing leaves its
// rows in its name; the other takes them once they expire, about a lease
// duration later, and starts from the dead one's checkpoint.
func TestCoordinatorFailover(t *testing.T) {
	tab, _, _ := sharedTable(t)
	ensure(t, tab, "shard-0", "shard-1")
	checkpointing := func(ctx context.Context, w *worker, h Held) error {
		if err := w.c.Checkpoint(ctx, h.Shard, "seq-"+w.c.o.Owner+"-"+h.Shard); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
	a := run(t, tab, "a", &worker{onStart: checkpointing}, func(o *CoordinatorOptions) { o.noRelease = true })
	b := run(t, tab, "b", &worker{onStart: checkpointing}, nil)
	var dead string // a's shard
	eventually(t, 5*time.Second, "one shard each, checkpointed", func() bool {
		ha := a.c.Held()
		if len(ha) != 1 || len(b.c.Held()) != 1 {
			return false
		}
		dead = ha[0]
		return rows(t, tab)[dead].Checkpoint == "seq-a-"+dead
	})
	before := len(b.startsOf(dead)) // b may have read it before a stole it
	a.stop(t)
	killed := time.Now()
	if l := rows(t, tab)[dead]; l.Owner != "a" {
		t.Fatalf("after a's kill its row is %+v, want still a's", l)
	}
	var s *start
	eventually(t, 5*time.Second, "b starts a's shard", func() bool {
		if ss := b.startsOf(dead); len(ss) > before {
			s = ss[before]
		}
		return s != nil
	})
	took := time.Since(killed)
	if s.held.Checkpoint != "seq-a-"+dead {
		t.Errorf("b started %s at checkpoint %q, want a's", dead, s.held.Checkpoint)
	}
	// b last saw a's counter move at most a renewal before the kill, so
	// it cannot have judged the lease expired much sooner than a lease
	// duration after.
	if took < testDuration-testRenew-testTake {
		t.Errorf("b took %s %v after a's kill, before it could have expired", dead, took)
	}
	t.Logf("b took %s %v after the kill", dead, took)
	eventually(t, 2*time.Second, "b's checkpoint", func() bool { return rows(t, tab)[dead].Checkpoint == "seq-b-"+dead })
	if !b.saw("taken " + dead) {
		t.Errorf("b's events %v: want taken %s", b.evs(), dead)
	}
}

// TestCoordinatorLostLease: another worker takes a held lease directly; the
// holder's renewal finds the counter moved and cancels the Start within
// about a renewal interval, and its checkpoints fail with ErrLost. A
// checkpoint made before the renewal notices finds out itself.
func TestCoordinatorLostLease(t *testing.T) {
	tab, _, _ := sharedTable(t)
	ensure(t, tab, "shard-0", "shard-1")
	a := run(t, tab, "a", &worker{}, nil)
	eventually(t, 5*time.Second, "a holds both", func() bool { return len(a.c.Held()) == 2 })
	ctx := context.Background()
	steal := func(shard string) {
		t.Helper()
		for {
			_, err := tab.Take(ctx, rows(t, tab)[shard], "thief")
			if err == nil {
				return
			}
			if !errors.Is(err, ErrLost) { // else a renewal came between
				t.Fatal(err)
			}
		}
	}

	steal("shard-0")
	stolen := time.Now()
	s := a.startsOf("shard-0")[0]
	select {
	case <-s.ctx.Done():
		t.Logf("Start ctx cancelled %v after the steal", time.Since(stolen))
	case <-time.After(testRenew + time.Second):
		t.Fatal("Start ctx not cancelled after the steal")
	}
	if err := a.c.Checkpoint(ctx, "shard-0", "late"); !errors.Is(err, ErrLost) {
		t.Errorf("checkpoint after the loss: %v, want ErrLost", err)
	}
	eventually(t, time.Second, "a lost event", func() bool { return a.saw("lost shard-0") })

	steal("shard-1")
	err := a.c.Checkpoint(ctx, "shard-1", "late")
	if !errors.Is(err, ErrLost) {
		t.Errorf("checkpoint of a stolen lease: %v, want ErrLost", err)
	}
	s = a.startsOf("shard-1")[0]
	select {
	case <-s.ctx.Done():
	case <-time.After(time.Second):
		t.Fatal("Start ctx not cancelled after the failed checkpoint")
	}
	for shard, l := range rows(t, tab) {
		if l.Owner != "thief" || l.Checkpoint != "" {
			t.Errorf("%s: %+v, want the thief's and no checkpoint", shard, l)
		}
	}
	if h := a.c.Held(); len(h) != 0 {
		t.Errorf("a still holds %v", h)
	}
}

// TestCoordinatorUnheardWrite: a write in the holder's name whose answer
// it never got (here made by the test) moves the counter; the holder
// finds the row still its own and keeps the lease.
func TestCoordinatorUnheardWrite(t *testing.T) {
	tab, _, _ := sharedTable(t)
	ensure(t, tab, "shard-0")
	a := run(t, tab, "a", &worker{}, nil)
	eventually(t, 5*time.Second, "a holds shard-0", func() bool { return len(a.c.Held()) == 1 })
	ctx := context.Background()
	if _, err := tab.Renew(ctx, rows(t, tab)["shard-0"], "a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * testRenew)
	if err := a.c.Checkpoint(ctx, "shard-0", "42"); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if s := a.startsOf("shard-0"); len(s) != 1 || s[0].ctx.Err() != nil || a.saw("lost shard-0") {
		t.Fatalf("a let go of its lease: %d starts, events %v", len(s), a.evs())
	}
	// A lost answer on the last checkpoint (made with a ctx the stop
	// cancels) does not keep the release from happening either.
	if _, err := tab.Renew(ctx, rows(t, tab)["shard-0"], "a"); err != nil {
		t.Fatal(err)
	}
	a.stop(t)
	if l := rows(t, tab)["shard-0"]; l.Owner != "" || l.Checkpoint != "42" {
		t.Errorf("after the stop: %+v, want released at 42", l)
	}
}

// TestCoordinatorRenewFailure: with PostgreSQL unreachable, renewals
// fail; the lease is given up (Start cancelled) once a lease duration has
// passed since the last successful one, not before.
func TestCoordinatorRenewFailure(t *testing.T) {
	tab, dsn, schema := sharedTable(t)
	ensure(t, tab, "shard-0")
	proxy, err := pgproxy.Start(hostPort(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	a := run(t, tableOn(t, proxy.DSN(dsn), schema), "a", &worker{}, nil)
	eventually(t, 5*time.Second, "a holds shard-0", func() bool { return len(a.c.Held()) == 1 })
	time.Sleep(2 * testRenew) // a renewal or two
	proxy.Block()
	blocked := time.Now()
	s := a.startsOf("shard-0")[0]
	select {
	case <-s.ctx.Done():
	case <-time.After(testDuration + 2*time.Second):
		t.Fatal("Start ctx not cancelled with PostgreSQL down")
	}
	after := time.Since(blocked)
	t.Logf("given up %v after PostgreSQL went down", after)
	if after < testDuration-testRenew-100*time.Millisecond {
		t.Errorf("given up %v after PostgreSQL went down: sooner than a lease duration since the last renewal", after)
	}
	eventually(t, time.Second, "a lost event", func() bool { return a.saw("lost shard-0") })
	// Back up: a takes it again (the row is still in its name, but it
	// holds it no longer, so it is free to it).
	proxy.Unblock()
	eventually(t, 5*time.Second, "a takes shard-0 again", func() bool { return len(a.startsOf("shard-0")) >= 2 })
}

// TestCoordinatorFinish: a parent read to its end is Finished, its
// children's rows exist and are read; a merged child waits for both of
// its parents.
func TestCoordinatorFinish(t *testing.T) {
	tab, _, _ := sharedTable(t)
	ensure(t, tab, "p", "q")
	qDone := make(chan struct{})
	lineage := func(ctx context.Context, w *worker, h Held) error {
		switch h.Shard {
		case "p":
			return w.c.Finish(ctx, "p", map[string][]string{"c1": {"p"}, "m": {"p", "q"}})
		case "q":
			select {
			case <-qDone:
				return w.c.Finish(ctx, "q", map[string][]string{"m": {"p", "q"}})
			case <-ctx.Done():
				return nil
			}
		}
		<-ctx.Done()
		return nil
	}
	a := run(t, tab, "a", &worker{onStart: lineage}, nil)
	b := run(t, tab, "b", &worker{onStart: lineage}, nil)
	startsOf := func(shard string) int { return len(a.startsOf(shard)) + len(b.startsOf(shard)) }

	eventually(t, 5*time.Second, "p finished, c1 read", func() bool {
		r := rows(t, tab)
		return r["p"].Checkpoint == Finished && r["c1"].Owner != "" && startsOf("c1") > 0
	})
	p := startsOf("p") // 1, or 2 had it been stolen before its first reader finished it
	r := rows(t, tab)
	if r["p"].Owner != "" {
		t.Errorf("finished p: %+v, want released", r["p"])
	}
	if m, ok := r["m"]; !ok || !slices.Equal(m.Parents, []string{"p", "q"}) {
		t.Fatalf("merged child's row: %+v (%v)", m, ok)
	}
	if c1 := r["c1"]; !slices.Equal(c1.Parents, []string{"p"}) {
		t.Errorf("c1's row: %+v", c1)
	}
	// m waits for q through several rounds.
	time.Sleep(3 * testTake)
	if n := startsOf("m"); n != 0 || rows(t, tab)["m"].Owner != "" {
		t.Fatalf("m read (%d starts) before q finished", n)
	}
	if n := startsOf("p"); n != p {
		t.Errorf("finished p read again: %d starts, was %d", n, p)
	}

	close(qDone)
	eventually(t, 5*time.Second, "q finished, m read", func() bool {
		r := rows(t, tab)
		return r["q"].Checkpoint == Finished && r["m"].Owner != "" && startsOf("m") > 0
	})
	if !a.saw("released p") && !b.saw("released p") {
		t.Errorf("no released p event: a %v, b %v", a.evs(), b.evs())
	}
	// The finished leases are not taken again (q may have been read
	// twice before, had it moved while balancing).
	q := startsOf("q")
	time.Sleep(3 * testTake)
	if startsOf("p") != p || startsOf("q") != q {
		t.Errorf("finished shards restarted: p %d (was %d), q %d (was %d)", startsOf("p"), p, startsOf("q"), q)
	}
}

// TestCoordinatorStartError: a Start that fails has its lease released
// and is started again in a later round.
func TestCoordinatorStartError(t *testing.T) {
	tab, _, _ := sharedTable(t)
	ensure(t, tab, "shard-0")
	var once sync.Once
	a := run(t, tab, "a", &worker{onStart: func(ctx context.Context, w *worker, h Held) error {
		var err error
		once.Do(func() { err = errors.New("reader broke") })
		if err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}}, nil)
	eventually(t, 5*time.Second, "shard-0 started again", func() bool { return len(a.startsOf("shard-0")) >= 2 })
	if !a.saw("released shard-0") {
		t.Errorf("events %v: want released shard-0", a.evs())
	}
	if h := a.c.Held(); !slices.Equal(h, []string{"shard-0"}) {
		t.Errorf("held %v", h)
	}
}

// TestCoordinatorReleasesOnStop: a Run ending gracefully returns every
// Start and releases the rows, keeping their checkpoints.
func TestCoordinatorReleasesOnStop(t *testing.T) {
	tab, _, _ := sharedTable(t)
	ensure(t, tab, "shard-0", "shard-1", "shard-2")
	a := run(t, tab, "a", &worker{onStart: func(ctx context.Context, w *worker, h Held) error {
		if err := w.c.Checkpoint(ctx, h.Shard, "seq-"+h.Shard); err != nil {
			return err
		}
		<-ctx.Done()
		// A last checkpoint at shutdown, before the release.
		return w.c.Checkpoint(context.Background(), h.Shard, "last-"+h.Shard)
	}}, nil)
	eventually(t, 5*time.Second, "a holds all three, checkpointed", func() bool {
		for shard, l := range rows(t, tab) {
			if l.Checkpoint != "seq-"+shard {
				return false
			}
		}
		return len(a.c.Held()) == 3
	})
	a.stop(t)
	for shard, l := range rows(t, tab) {
		if l.Owner != "" || l.Checkpoint != "last-"+shard {
			t.Errorf("%s after the stop: %+v, want free at checkpoint last-%s", shard, l, shard)
		}
		if !a.saw("released " + shard) {
			t.Errorf("no released %s event: %v", shard, a.evs())
		}
	}
}

// TestNewCoordinator: options are checked and defaulted.
func TestNewCoordinator(t *testing.T) {
	tab := &Table{}
	for _, o := range []CoordinatorOptions{
		{Owner: "a"},
		{Table: tab},
		{Table: tab, Owner: "a", Duration: -time.Second},
		{Table: tab, Owner: "a", Duration: time.Second, Renew: time.Second},
	} {
		if _, err := NewCoordinator(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	c, err := NewCoordinator(CoordinatorOptions{Table: tab, Owner: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if c.o.Duration != 10*time.Second || c.o.Renew != c.o.Duration/3 || c.o.Take != c.o.Duration/2 {
		t.Errorf("defaults: %v %v %v", c.o.Duration, c.o.Renew, c.o.Take)
	}
	if err := c.Checkpoint(context.Background(), "shard-0", "1"); !errors.Is(err, ErrLost) {
		t.Errorf("checkpoint of a lease not held: %v", err)
	}
	if err := c.Run(context.Background(), nil); err == nil {
		t.Error("Run without a handler accepted")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// hostPort is the server dsn (a URL) points at.
func hostPort(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("DSN %q: not a URL with a host (%v)", dsn, err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}
