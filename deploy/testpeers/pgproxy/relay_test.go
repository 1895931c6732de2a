package pgproxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"testing/iotest"
	"time"
)

func TestIsCommit(t *testing.T) {
	yes := []string{"commit", "COMMIT", "COMMIT;", "end", "END;", "Commit Work", "commit transaction",
		"  commit ;; ", "\ncommit\n", "end transaction;", "COMMIT\t;"}
	no := []string{"", ";", "commit prepared 'x'", "committed", "select 'commit'", "commit; select 1",
		"commit and chain", "begin", "rollback", "endless", "commit work work", "insert into t values (1); commit"}
	for _, q := range yes {
		if !isCommit([]byte(q)) {
			t.Errorf("isCommit(%q) = false, want true", q)
		}
	}
	for _, q := range no {
		if isCommit([]byte(q)) {
			t.Errorf("isCommit(%q) = true, want false", q)
		}
	}
}

// msg frames one typed message.
func msg(typ byte, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
	return append(b, body...)
}

// recorder is a handler that drops messages of type 'x', asks for
// the first 7 bytes of every 'w' and records what it was shown.
type recorder struct {
	types  []byte
	sizes  []int
	prefix [][]byte
}

func (r *recorder) want(typ byte, n int) int {
	if typ == 'w' {
		return min(n, 7)
	}
	return 0
}

func (r *recorder) handle(typ byte, n int, prefix []byte) action {
	r.types = append(r.types, typ)
	r.sizes = append(r.sizes, n)
	r.prefix = append(r.prefix, bytes.Clone(prefix))
	if typ == 'x' {
		return actDrop
	}
	return actForward
}

// chunks reads at most a random 1..max bytes at a time.
type chunks struct {
	r   io.Reader
	rnd *rand.Rand
	max int
}

func (c *chunks) Read(p []byte) (int, error) {
	n := 1 + c.rnd.IntN(c.max)
	return c.r.Read(p[:min(len(p), n)])
}

// TestPumpFraming relays a random stream of messages (some larger than
// the buffer, some dropped) read in every kind of chunking, and checks
// the output byte for byte and the headers the handler saw.
func TestPumpFraming(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var in, want bytes.Buffer
	var types []byte
	var sizes []int
	var prefixes [][]byte
	for i := range 300 {
		typ := "Dwxdq"[rnd.IntN(5)]
		n := rnd.IntN(64)
		switch i % 50 {
		case 7:
			n = bufSize + rnd.IntN(3*bufSize) // larger than the buffer
		case 8:
			n = 0
		}
		body := make([]byte, n)
		for j := range body {
			body[j] = byte(rnd.Uint32())
		}
		m := msg(typ, body)
		in.Write(m)
		if typ != 'x' {
			want.Write(m)
		}
		types = append(types, typ)
		sizes = append(sizes, n)
		var pre []byte
		if typ == 'w' {
			pre = body[:min(n, 7)]
		}
		prefixes = append(prefixes, pre)
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one-byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"random":   func(r io.Reader) io.Reader { return &chunks{r: r, rnd: rand.New(rand.NewPCG(3, 4)), max: 9000} },
		"small":    func(r io.Reader) io.Reader { return &chunks{r: r, rnd: rand.New(rand.NewPCG(5, 6)), max: 6} },
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			rec := &recorder{}
			err := pump(bufio.NewReaderSize(wrap(bytes.NewReader(in.Bytes())), bufSize), &out, rec)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("pump: %v, want EOF", err)
			}
			if !bytes.Equal(out.Bytes(), want.Bytes()) {
				t.Fatalf("output differs: %d bytes, want %d", out.Len(), want.Len())
			}
			if !bytes.Equal(rec.types, types) {
				t.Fatalf("types seen %q, want %q", rec.types, types)
			}
			for i := range sizes {
				if rec.sizes[i] != sizes[i] || !bytes.Equal(rec.prefix[i], prefixes[i]) {
					t.Fatalf("message %d: size %d prefix %x, want %d %x", i, rec.sizes[i], rec.prefix[i], sizes[i], prefixes[i])
				}
			}
		})
	}
}

func TestPumpBadLength(t *testing.T) {
	in := []byte{'Q', 0, 0, 0, 3}
	err := pump(bufio.NewReader(bytes.NewReader(in)), io.Discard, &recorder{})
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("pump of a length below 4: %v, want a protocol error", err)
	}
}

// TestPumpStopsBeforeCut checks that a cut COMMIT is not forwarded while
// everything before it is.
func TestPumpStopsBeforeCut(t *testing.T) {
	p := &Proxy{}
	p.CutBeforeCommit(1)
	f := &frontend{p: p, c: &pair{}, syncs: 1}
	before := append(msg('Q', []byte("insert into t values (1)\x00")), msg('d', make([]byte, 100))...)
	in := append(append(bytes.Clone(before), msg('Q', []byte("COMMIT\x00"))...), msg('Q', []byte("select 1\x00"))...)
	var out bytes.Buffer
	err := pump(bufio.NewReader(bytes.NewReader(in)), &out, f)
	if !errors.Is(err, errCut) {
		t.Fatalf("pump: %v, want errCut", err)
	}
	if !bytes.Equal(out.Bytes(), before) {
		t.Fatalf("forwarded %q, want %q", out.Bytes(), before)
	}
}

// TestBackendSwallowsCommitAnswer feeds the backend handler the answers
// to: startup, a query, the COMMIT (to lose), and checks that only the
// COMMIT's answer is dropped and that pump ends with errLost at its
// ReadyForQuery.
func TestBackendSwallowsCommitAnswer(t *testing.T) {
	c := &pair{}
	c.loseAt.Store(3) // startup, query, COMMIT
	rfq := msg('Z', []byte("T"))
	var kept bytes.Buffer
	kept.Write(msg('R', []byte{0, 0, 0, 0}))
	kept.Write(msg('Z', []byte("I")))
	kept.Write(msg('C', []byte("INSERT 0 1\x00")))
	kept.Write(rfq)
	in := bytes.Clone(kept.Bytes())
	in = append(in, msg('N', []byte("notice\x00"))...)
	in = append(in, msg('C', []byte("COMMIT\x00"))...)
	in = append(in, msg('Z', []byte("I"))...)
	in = append(in, msg('C', []byte("SELECT 1\x00"))...) // never reached
	var out bytes.Buffer
	err := pump(bufio.NewReader(iotest.OneByteReader(bytes.NewReader(in))), &out, &backend{c: c})
	if !errors.Is(err, errLost) {
		t.Fatalf("pump: %v, want errLost", err)
	}
	if !bytes.Equal(out.Bytes(), kept.Bytes()) {
		t.Fatalf("forwarded %q, want %q", out.Bytes(), kept.Bytes())
	}
}

// TestPumpAllocs checks that relaying allocates nothing per message.
func TestPumpAllocs(t *testing.T) {
	var in bytes.Buffer
	const msgs = 10000
	for i := range msgs / 5 {
		in.Write(msg('P', []byte("stmt_1\x00insert into t values ($1)\x00\x00\x00")))
		in.Write(msg('B', []byte("\x00stmt_1\x00\x00\x00\x00\x01\x00\x00\x00\x01x\x00\x00")))
		in.Write(msg('E', []byte("\x00\x00\x00\x00\x00")))
		in.Write(msg('S', nil))
		in.Write(msg('Q', []byte("select 1\x00")))
		_ = i
	}
	data := in.Bytes()
	p := &Proxy{}
	f := &frontend{p: p, c: &pair{}, syncs: 1}
	f.stmts = add(nil, []byte("commit_stmt")) // make the deletes run
	f.portals = add(nil, []byte("commit_portal"))
	src := bytes.NewReader(data)
	br := bufio.NewReaderSize(src, bufSize)
	allocs := testing.AllocsPerRun(5, func() {
		src.Reset(data)
		br.Reset(src)
		if err := pump(br, io.Discard, f); !errors.Is(err, io.EOF) {
			t.Fatalf("pump: %v", err)
		}
	})
	if allocs > 2 {
		t.Fatalf("pump allocated %.0f times for %d messages", allocs, msgs)
	}
}

// TestRefusedEncryptionThenStartup covers the answer 'N' to SSLRequest and
// GSSENCRequest, which the shared test server (ssl=on, GSSAPI built in)
// never gives: a scripted upstream refuses both, then accepts the
// StartupMessage; the proxy must then parse typed messages (a cut COMMIT
// never reaches the upstream, the query before it does).
func TestRefusedEncryptionThenStartup(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		pkt := make([]byte, 8)
		for range 2 { // SSLRequest, GSSENCRequest
			if _, err := io.ReadFull(conn, pkt); err != nil {
				got <- nil
				return
			}
			_, _ = conn.Write([]byte{'N'})
		}
		var all bytes.Buffer
		if _, err := io.ReadFull(conn, pkt[:4]); err != nil {
			got <- nil
			return
		}
		startup := make([]byte, binary.BigEndian.Uint32(pkt)-4)
		if _, err := io.ReadFull(conn, startup); err != nil {
			got <- nil
			return
		}
		_, _ = conn.Write(append(msg('R', []byte{0, 0, 0, 0}), msg('Z', []byte("I"))...))
		_, _ = io.Copy(&all, conn) // until the proxy closes
		got <- all.Bytes()
	}()

	p, err := Start(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.CutBeforeCommit(1)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	one := make([]byte, 1)
	for _, code := range []uint32{codeSSL, codeGSSENC} {
		req := make([]byte, 8)
		binary.BigEndian.PutUint32(req, 8)
		binary.BigEndian.PutUint32(req[4:], code)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, one); err != nil || one[0] != 'N' {
			t.Fatalf("answer to %d: %q %v", code, one, err)
		}
	}
	params := []byte("user\x00root\x00database\x00test\x00\x00")
	startup := binary.BigEndian.AppendUint32(nil, uint32(8+len(params)))
	startup = binary.BigEndian.AppendUint32(startup, 3<<16)
	if _, err := c.Write(append(startup, params...)); err != nil {
		t.Fatal(err)
	}
	answer := make([]byte, 9+6)
	if _, err := io.ReadFull(c, answer); err != nil || answer[0] != 'R' || answer[9] != 'Z' {
		t.Fatalf("startup answer %q: %v", answer, err)
	}
	query := msg('Q', []byte("select 1\x00"))
	if _, err := c.Write(append(bytes.Clone(query), msg('Q', []byte("commit\x00"))...)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(one); err == nil {
		t.Fatal("the client connection was not closed at the COMMIT")
	}
	if b := <-got; !bytes.Equal(b, query) {
		t.Fatalf("upstream received %q after startup, want %q", b, query)
	}
	if cut, lost := p.Commits(); cut != 1 || lost != 0 {
		t.Fatalf("Commits() = %d, %d", cut, lost)
	}
}

// BenchmarkPump relays a COPY's worth of CopyData messages in memory.
func BenchmarkPump(b *testing.B) {
	var in bytes.Buffer
	in.Write(msg('Q', []byte("copy t from stdin\x00")))
	row := bytes.Repeat([]byte("y"), 200)
	for range 20000 {
		in.Write(msg('d', row))
	}
	in.Write(msg('c', nil))
	data := in.Bytes()
	f := &frontend{p: &Proxy{}, c: &pair{}, syncs: 1}
	src := bytes.NewReader(data)
	br := bufio.NewReaderSize(src, bufSize)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(data)
		br.Reset(src)
		if err := pump(br, io.Discard, f); !errors.Is(err, io.EOF) {
			b.Fatal(err)
		}
	}
}
