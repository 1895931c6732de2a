// Package pgproxy is a TCP proxy that understands just enough of the
// PostgreSQL wire protocol to inject the faults exactly-once loading must
// survive, for tests and benchmarks that cannot stop the shared server:
//
//   - Block: every open connection is closed (both sides) and new ones are
//     accepted and closed at once, until Unblock — the server looks down.
//   - CutBeforeCommit: the next COMMIT a client sends is not forwarded; the
//     connection is closed, so the server rolls the transaction back.
//   - LoseCommitAnswer: the next COMMIT is forwarded, the server's answer
//     (through its ReadyForQuery) is swallowed and both sides are closed:
//     the transaction is committed but the client never hears so.
//
// The proxy parses message headers only: the startup packet (no type byte),
// then typed messages (1 byte type, int32 length). A COMMIT is a simple
// Query whose whole text is COMMIT or END (any case, optionally followed by
// WORK or TRANSACTION and semicolons), or the Execute of a portal bound to
// a statement parsed from such a text (extended protocol, named or
// unnamed). A COMMIT inside a multi-statement simple Query ("INSERT ...;
// COMMIT") is not recognised.
//
// SSLRequest and GSSENCRequest are forwarded and the server's one-byte
// answer relayed; when the server accepts ('S' or 'G') the rest of the
// connection is encrypted and is relayed blindly: no fault but Block
// applies to it. Tests therefore connect with sslmode=disable.
// CancelRequest packets are forwarded.
//
// The command cmd/pgproxy runs a Proxy with an HTTP control endpoint
// (ControlHandler) for shell scripts.
package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds connecting to the upstream server.
const dialTimeout = 10 * time.Second

// Proxy relays PostgreSQL connections from its listener to one upstream
// server, applying the faults it is armed with. Its methods are safe for
// concurrent use.
type Proxy struct {
	upstream string
	ln       net.Listener
	log      *slog.Logger
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
	running  atomic.Int64 // goroutines started and not yet finished (tests)

	mu       sync.Mutex
	conns    map[*pair]struct{}
	blocked  bool
	closed   bool
	pendCut  int
	pendLose int
	cut      int
	lost     int
}

// Status is a snapshot of a Proxy's state.
type Status struct {
	Blocked     bool `json:"blocked"`
	PendingCut  int  `json:"pending_cut"`  // COMMITs still to cut
	PendingLose int  `json:"pending_lose"` // COMMIT answers still to lose
	Cut         int  `json:"cut"`          // COMMITs cut so far
	Lost        int  `json:"lost"`         // COMMIT answers lost so far
	Connections int  `json:"connections"`  // connection pairs open now
}

// Start listens on 127.0.0.1 at a free port and relays to upstream
// ("host:port"). It does not log.
func Start(upstream string) (*Proxy, error) {
	return Listen("127.0.0.1:0", upstream, nil)
}

// Listen listens on addr and relays to upstream ("host:port"), logging
// connection and fault events to logger (nil: no logging).
func Listen(addr, upstream string, logger *slog.Logger) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("pgproxy: upstream %q: %w", upstream, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pgproxy: listen: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		upstream: upstream,
		ln:       ln,
		log:      logger,
		done:     make(chan struct{}),
		conns:    make(map[*pair]struct{}),
	}
	p.goroutine(p.acceptLoop)
	return p, nil
}

// Addr is the listening address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// DSN returns base with its host and port replaced by the proxy's. A URL
// (postgres:// or postgresql://) gets its host part replaced (all hosts of
// a multi-host URL); a key=value string gets host= and port= appended,
// which override earlier ones. An unparseable URL gives "" (so connecting
// fails loudly rather than bypassing the proxy).
func (p *Proxy) DSN(base string) string {
	host, port, _ := net.SplitHostPort(p.Addr())
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			return ""
		}
		u.Host = net.JoinHostPort(host, port)
		q := u.Query()
		if q.Has("host") || q.Has("port") || q.Has("hostaddr") {
			q.Del("host")
			q.Del("port")
			q.Del("hostaddr")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return strings.TrimSpace(base) + " host=" + host + " port=" + port
}

// Block closes every open connection (both sides) and makes the proxy
// close new connections as soon as it accepts them, until Unblock.
func (p *Proxy) Block() {
	p.mu.Lock()
	p.blocked = true
	open := p.openPairs()
	p.mu.Unlock()
	p.log.Info("pgproxy: blocked", "closed_connections", len(open))
	for _, c := range open {
		p.closePair(c)
	}
}

// Unblock lets new connections through again.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	p.blocked = false
	p.mu.Unlock()
	p.log.Info("pgproxy: unblocked")
}

// CutBeforeCommit arms the next n COMMITs seen from any client: each one
// is not forwarded and its connection is closed on both sides, so the
// server rolls the transaction back. It adds to the COMMITs still armed.
func (p *Proxy) CutBeforeCommit(n int) {
	p.mu.Lock()
	p.pendCut += max(n, 0)
	p.mu.Unlock()
}

// LoseCommitAnswer arms the next n COMMITs: each one is forwarded, the
// server's answer (whatever it is, through its ReadyForQuery) is
// swallowed and both sides are closed, so the transaction is committed
// but the client never hears so. When a COMMIT is armed for both faults,
// CutBeforeCommit applies first.
func (p *Proxy) LoseCommitAnswer(n int) {
	p.mu.Lock()
	p.pendLose += max(n, 0)
	p.mu.Unlock()
}

// Commits reports the faults applied so far: COMMITs cut, and COMMIT
// answers lost (counted once the answer has been swallowed and the
// connection closed).
func (p *Proxy) Commits() (cut, lost int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut, p.lost
}

// Reset unblocks, disarms the pending faults and zeroes the counts.
// Connections stay open.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.blocked = false
	p.pendCut, p.pendLose, p.cut, p.lost = 0, 0, 0, 0
	p.mu.Unlock()
	p.log.Info("pgproxy: reset")
}

// Status reports the proxy's state.
func (p *Proxy) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{
		Blocked:     p.blocked,
		PendingCut:  p.pendCut,
		PendingLose: p.pendLose,
		Cut:         p.cut,
		Lost:        p.lost,
		Connections: len(p.conns),
	}
}

// Close stops listening, closes every connection and waits until all the
// proxy's goroutines have finished.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.done)
	open := p.openPairs()
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range open {
		p.closePair(c)
	}
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("pgproxy: close listener: %w", err)
	}
	return nil
}

// goroutine runs f on a goroutine Close waits for. Callers other than
// Listen hold p.mu and have checked !p.closed, so no Add races Close's
// Wait.
func (p *Proxy) goroutine(f func()) {
	p.wg.Add(1)
	p.running.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.running.Add(-1)
		f()
	}()
}

// openPairs lists the open connection pairs; p.mu is held.
func (p *Proxy) openPairs() []*pair {
	open := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		open = append(open, c)
	}
	return open
}

func (p *Proxy) acceptLoop() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Warn("pgproxy: accept", "err", err)
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.mu.Lock()
		if p.blocked || p.closed {
			p.mu.Unlock()
			_ = conn.Close()
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		c := &pair{client: conn, ctx: ctx, cancel: cancel}
		p.conns[c] = struct{}{}
		p.goroutine(func() { p.serve(c) })
		p.mu.Unlock()
	}
}

// pair is one client connection and its upstream connection.
type pair struct {
	client net.Conn
	ctx    context.Context // cancelled when the pair closes (stops the dial)
	cancel context.CancelFunc

	// server and closed are guarded by Proxy.mu.
	server net.Conn
	closed bool

	halves atomic.Int32 // directions that ended cleanly (EOF)
	// loseAt, when not 0, is the ordinal of the ReadyForQuery that ends
	// the answer to a COMMIT whose answer is to be lost.
	loseAt atomic.Int64
}

// serve dials upstream and relays c until either side fails.
func (p *Proxy) serve(c *pair) {
	d := net.Dialer{Timeout: dialTimeout}
	srv, err := d.DialContext(c.ctx, "tcp", p.upstream)
	if err != nil {
		p.log.Warn("pgproxy: dial upstream", "upstream", p.upstream, "err", err)
		p.closePair(c)
		return
	}
	p.mu.Lock()
	if c.closed {
		p.mu.Unlock()
		_ = srv.Close()
		return
	}
	c.server = srv
	p.mu.Unlock()
	p.relay(c, srv)
}

// closePair closes both sides of c once.
func (p *Proxy) closePair(c *pair) {
	p.mu.Lock()
	if c.closed {
		p.mu.Unlock()
		return
	}
	c.closed = true
	delete(p.conns, c)
	srv := c.server
	p.mu.Unlock()
	c.cancel()
	_ = c.client.Close()
	if srv != nil {
		_ = srv.Close()
	}
}

// finish records the end of one direction (src → dst) of c: a clean end
// of the source (EOF) half-closes dst, and the pair closes when both
// directions have ended; any other end closes the pair at once.
func (p *Proxy) finish(c *pair, dst net.Conn, err error) {
	if !errors.Is(err, io.EOF) {
		p.closePair(c)
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if c.halves.Add(1) == 2 {
		p.closePair(c)
	}
}

// fault is what to do with a COMMIT.
type fault int

const (
	faultNone fault = iota
	faultCut
	faultLose
)

// takeFault consumes one armed fault for a COMMIT just seen.
func (p *Proxy) takeFault() fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.pendCut > 0:
		p.pendCut--
		return faultCut
	case p.pendLose > 0:
		p.pendLose--
		return faultLose
	}
	return faultNone
}

// applied records an applied fault.
func (p *Proxy) applied(f fault) {
	p.mu.Lock()
	if f == faultCut {
		p.cut++
	} else {
		p.lost++
	}
	p.mu.Unlock()
}
