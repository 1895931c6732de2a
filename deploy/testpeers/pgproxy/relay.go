package pgproxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// bufSize is each direction's read buffer.
const bufSize = 64 << 10

// Startup packet codes (the int32 after the length of an untyped packet).
const (
	codeCancel  = 80877102
	codeSSL     = 80877103
	codeGSSENC  = 80877104
	maxStartLen = 10000 // the server's own limit on a startup packet
)

// inspectMax bounds how much of a message body the frontend parser looks
// at: enough for any COMMIT text and statement or portal name.
const inspectMax = 512

// Sentinels a handler's action makes pump return.
var (
	errCut  = errors.New("pgproxy: commit cut")
	errLost = errors.New("pgproxy: commit answer lost")
)

// relay runs the startup exchange on this goroutine, then relays c's two
// directions, the server → client one on a second goroutine.
func (p *Proxy) relay(c *pair, srv net.Conn) {
	cr := bufio.NewReaderSize(c.client, bufSize)
	sr := bufio.NewReaderSize(srv, bufSize)
	typed, err := p.startup(c, cr, sr, srv)
	if err != nil {
		p.log.Debug("pgproxy: startup", "err", err)
		p.closePair(c)
		return
	}
	if !typed {
		p.goroutine(func() { p.finish(c, c.client, blind(c.client, sr)) })
		p.finish(c, srv, blind(srv, cr))
		return
	}
	be := &backend{p: p, c: c}
	p.goroutine(func() {
		err := pump(sr, c.client, be)
		if errors.Is(err, errLost) {
			p.applied(faultLose)
			p.log.Info("pgproxy: commit answer lost, connection closed")
		}
		p.finish(c, c.client, err)
	})
	fe := &frontend{p: p, c: c, syncs: 1} // the startup's ReadyForQuery
	err = pump(cr, srv, fe)
	if errors.Is(err, errCut) {
		p.applied(faultCut)
		p.log.Info("pgproxy: commit cut, connection closed")
	}
	p.finish(c, srv, err)
}

// blind copies src to dst without looking.
func blind(dst net.Conn, src *bufio.Reader) error {
	_, err := src.WriteTo(dst)
	if err == nil {
		err = io.EOF // src ended cleanly
	}
	return err
}

// startup relays the untyped packets that open a connection: SSLRequest
// and GSSENCRequest (with the server's one-byte answers), then a
// StartupMessage or CancelRequest. It reports whether typed messages
// follow (false: relay the rest blindly).
func (p *Proxy) startup(c *pair, cr, sr *bufio.Reader, srv net.Conn) (typed bool, err error) {
	for {
		head, err := cr.Peek(8)
		if err != nil {
			return false, fmt.Errorf("read startup packet: %w", err)
		}
		if head[0] == 0x16 { // a TLS ClientHello: direct TLS negotiation
			return false, nil
		}
		n := int(binary.BigEndian.Uint32(head))
		code := binary.BigEndian.Uint32(head[4:])
		if n < 8 || n > maxStartLen {
			return false, nil // not ours to judge: the server will
		}
		pkt, err := cr.Peek(n)
		if err != nil {
			return false, fmt.Errorf("read startup packet: %w", err)
		}
		if _, err := srv.Write(pkt); err != nil {
			return false, fmt.Errorf("forward startup packet: %w", err)
		}
		_, _ = cr.Discard(n)
		switch {
		case code == codeSSL || code == codeGSSENC:
			answer, err := sr.ReadByte()
			if err != nil {
				return false, fmt.Errorf("read encryption answer: %w", err)
			}
			if _, err := c.client.Write([]byte{answer}); err != nil {
				return false, fmt.Errorf("relay encryption answer: %w", err)
			}
			if answer != 'N' {
				// 'S' or 'G': encrypted from now on; anything else is
				// an old server's ErrorResponse the client reads whole.
				return false, nil
			}
		case code>>16 == 3: // StartupMessage, protocol 3.x
			return true, nil
		default: // CancelRequest, or a protocol the server will refuse
			return false, nil
		}
	}
}

// action is a handler's verdict on one message.
type action int

const (
	actForward  action = iota // pass the message on
	actDrop                   // do not pass it on
	actStop                   // pass nothing from here; pump returns errCut
	actDropLost               // drop it, and pump returns errLost
)

// handler inspects the messages pump relays.
type handler interface {
	// want is how many bytes of a body of n bytes (at most n and
	// inspectMax) handle must see for a message of type typ.
	want(typ byte, n int) int
	// handle judges a message from its type, body length and the first
	// want bytes of its body.
	handle(typ byte, n int, prefix []byte) action
}

// pump relays typed messages from src to dst, passing each header (and
// the prefix its handler wants) to h. It writes each read's worth of
// forwarded bytes at once and allocates nothing per message. It returns
// src's error (io.EOF at a clean end), dst's, errCut or errLost.
func pump(src *bufio.Reader, dst io.Writer, h handler) error {
	rem := 0      // bytes of the current message not yet seen
	drop := false // whether the current message is dropped
	need := 1     // bytes that must be buffered before parsing on
	for {
		if _, err := src.Peek(need); err != nil {
			return err
		}
		buf, _ := src.Peek(src.Buffered())
		start, off := 0, 0 // buf[start:off] is to be forwarded
		need = 1
		var stop error
	parse:
		for off < len(buf) {
			if rem > 0 {
				k := min(rem, len(buf)-off)
				off += k
				rem -= k
				if drop {
					start = off
				}
				continue
			}
			if len(buf)-off < 5 {
				need = 5
				break
			}
			typ := buf[off]
			n := int(binary.BigEndian.Uint32(buf[off+1:]))
			if n < 4 {
				return fmt.Errorf("pgproxy: message %q with length %d", typ, n)
			}
			n -= 4
			w := h.want(typ, n)
			if len(buf)-off < 5+w {
				need = 5 + w
				break
			}
			switch h.handle(typ, n, buf[off+5:off+5+w]) {
			case actForward:
				drop = false
			case actDrop:
				drop = true
			case actStop:
				stop = errCut
				break parse
			case actDropLost:
				stop = errLost
				break parse
			}
			if drop && start < off {
				if _, err := dst.Write(buf[start:off]); err != nil {
					return err
				}
			}
			k := min(5+n, len(buf)-off)
			off += k
			rem = 5 + n - k
			if drop {
				start = off
			}
		}
		if start < off {
			if _, err := dst.Write(buf[start:off]); err != nil {
				return err
			}
		}
		if stop != nil {
			return stop
		}
		_, _ = src.Discard(off)
	}
}

// frontend inspects client → server messages for COMMITs.
type frontend struct {
	p *Proxy
	c *pair
	// syncs counts the messages sent that the server answers with a
	// ReadyForQuery (StartupMessage, Query, Sync, FunctionCall).
	syncs int64
	// stmts and portals name the prepared statements and portals whose
	// text is a COMMIT (nil until there is one).
	stmts, portals map[string]struct{}
	// loseAtSync: the next Sync ends a COMMIT whose answer is to be lost.
	loseAtSync bool
	// draining: everything from the client is dropped (its COMMIT's
	// answer is being lost).
	draining bool
}

func (f *frontend) want(typ byte, n int) int {
	switch typ {
	case 'Q':
		if n <= inspectMax {
			return n
		}
	case 'P', 'B', 'E', 'C':
		return min(n, inspectMax)
	}
	return 0
}

func (f *frontend) handle(typ byte, n int, b []byte) action {
	if f.draining {
		return actDrop
	}
	switch typ {
	case 'Q':
		f.syncs++
		if len(b) == n && isCommit(cstring(b)) {
			switch f.p.takeFault() {
			case faultCut:
				return actStop
			case faultLose:
				f.c.loseAt.Store(f.syncs)
				f.draining = true
			}
		}
	case 'S':
		f.syncs++
		if f.loseAtSync {
			f.c.loseAt.Store(f.syncs)
			f.draining = true
		}
	case 'F':
		f.syncs++
	case 'P': // Parse: statement name, query text, ...
		name, rest, ok := cut(b)
		if !ok {
			break
		}
		query, _, ok := cut(rest)
		if ok && isCommit(query) {
			f.stmts = add(f.stmts, name)
		} else if len(f.stmts) > 0 {
			delete(f.stmts, string(name))
		}
	case 'B': // Bind: portal name, statement name, ...
		portal, rest, ok := cut(b)
		if !ok {
			break
		}
		stmt, _, ok := cut(rest)
		if _, commit := f.stmts[string(stmt)]; ok && commit {
			f.portals = add(f.portals, portal)
		} else if len(f.portals) > 0 {
			delete(f.portals, string(portal))
		}
	case 'E': // Execute: portal name, max rows
		portal, _, ok := cut(b)
		if _, commit := f.portals[string(portal)]; !ok || !commit || f.loseAtSync {
			break
		}
		switch f.p.takeFault() {
		case faultCut:
			return actStop
		case faultLose:
			f.loseAtSync = true // its answer ends at the next Sync
		}
	case 'C': // Close: 'S' or 'P', name
		if len(b) < 1 {
			break
		}
		name, _, ok := cut(b[1:])
		if !ok {
			break
		}
		if b[0] == 'S' && len(f.stmts) > 0 {
			delete(f.stmts, string(name))
		} else if b[0] == 'P' && len(f.portals) > 0 {
			delete(f.portals, string(name))
		}
	}
	return actForward
}

// add adds name to set, making the set when nil.
func add(set map[string]struct{}, name []byte) map[string]struct{} {
	if set == nil {
		set = make(map[string]struct{})
	}
	set[string(name)] = struct{}{}
	return set
}

// cut splits b at its first NUL: the C string, the rest, and whether the
// string was terminated within b.
func cut(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// cstring is b without its terminating NUL.
func cstring(b []byte) []byte {
	s, _, ok := cut(b)
	if !ok {
		return b
	}
	return s
}

// backend inspects server → client messages to swallow the answer to a
// COMMIT whose answer is to be lost.
type backend struct {
	p   *Proxy
	c   *pair
	rfq int64 // ReadyForQuery messages seen
	// answered: the COMMIT's own answer (CommandComplete COMMIT or
	// ROLLBACK, or an ErrorResponse) has been swallowed.
	answered bool
}

func (b *backend) want(typ byte, n int) int {
	if typ == 'C' && b.c.loseAt.Load() != 0 {
		return min(n, 16)
	}
	return 0
}

func (b *backend) handle(typ byte, n int, prefix []byte) action {
	at := b.c.loseAt.Load()
	swallow := at != 0 && b.rfq >= at-1
	switch typ {
	case 'Z':
		b.rfq++
		// The answer ends at the ReadyForQuery counted for the COMMIT,
		// and not before the COMMIT's own answer was seen (should the
		// count run short, the proxy waits for the real answer).
		if swallow && b.rfq >= at && b.answered {
			return actDropLost
		}
	case 'C':
		tag := cstring(prefix)
		if swallow && (bytes.Equal(tag, []byte("COMMIT")) || bytes.Equal(tag, []byte("ROLLBACK"))) {
			b.answered = true
		}
	case 'E':
		if swallow {
			b.answered = true
		}
	}
	if swallow {
		return actDrop
	}
	return actForward
}

// isCommit reports whether a query text is one COMMIT: COMMIT or END, in
// any case, optionally followed by WORK or TRANSACTION, with optional
// surrounding white space and trailing semicolons.
func isCommit(q []byte) bool {
	first, rest := word(q)
	if !equalFold(first, "commit") && !equalFold(first, "end") {
		return false
	}
	second, rest := word(rest)
	if equalFold(second, "work") || equalFold(second, "transaction") {
		second, _ = word(rest)
	}
	return len(second) == 0
}

// word returns the first word of b (ending at white space or ';') and
// what follows it; semicolons and white space are skipped before it.
func word(b []byte) (w, rest []byte) {
	i := 0
	for i < len(b) && (isSpace(b[i]) || b[i] == ';') {
		i++
	}
	j := i
	for j < len(b) && !isSpace(b[j]) && b[j] != ';' {
		j++
	}
	return b[i:j], b[j:]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// equalFold compares ASCII case-insensitively (lower is lower case).
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
