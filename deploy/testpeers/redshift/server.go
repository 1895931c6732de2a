package redshift

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Config configures a Server.
type Config struct {
	// Upstream is the PostgreSQL DSN the stand-in forwards to, e.g.
	// "postgres://root@127.0.0.1:5432/test?sslmode=disable".
	Upstream string
	// S3Endpoint is the S3 server's URL, e.g. s3rver's
	// "http://127.0.0.1:4569" (addressed path-style).
	S3Endpoint string
	// S3Region is the region used to sign S3 requests when the COPY has no
	// REGION option; default us-east-1.
	S3Region string
	// Password, if set, is the password every client must give (any user),
	// by MD5 challenge; a wrong one is refused with FATAL 28P01 as Redshift
	// does. Empty means trust.
	Password string
	// AccessKeyID and SecretAccessKey are the S3 credentials used for a COPY
	// authorized by IAM_ROLE (standing for the role the cluster would
	// assume); default S3RVER/S3RVER, the keys s3rver accepts.
	AccessKeyID, SecretAccessKey string
	// Listen is the address to listen on; default 127.0.0.1:0.
	Listen string
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
}

// CopyRecord describes one COPY statement the server received.
type CopyRecord struct {
	SQL           string // the statement, with secret keys replaced by '***'
	Table         string // target table as named (schema.table)
	Columns       []string
	From          string // the FROM URL: the manifest's with MANIFEST, else the key prefix
	Manifest      bool
	Credentials   string // CredentialsIAMRole or CredentialsAccessKeys; "" if unparsable
	AccessKeyID   string // the key id given with access keys (never the secret)
	Format        string // "json", "csv" or "text"
	InTransaction bool   // the client had a transaction block open
	Objects       []string
	Rows          int64       // rows loaded (0 when the COPY failed)
	Rejected      []LoadError // rows not loaded, as stl_load_errors would list them
	Err           error       // the error answered (a *pgconn.PgError), nil on success
}

// LoadError is one row a COPY could not load, as Redshift's
// stl_load_errors system table describes it.
type LoadError struct {
	File     string // s3:// URL of the object
	Line     int    // line number in the (decompressed) object
	Column   string
	Type     string // column type
	RawValue string // the field's text (at most 1024 bytes)
	Code     int    // Redshift load error code (1204, 1207, 1213, ...)
	Reason   string
}

// Server is a running Redshift stand-in.
type Server struct {
	cfg      Config
	upstream *pgconn.Config
	ln       net.Listener
	log      *slog.Logger
	http     *http.Client
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	sessions map[uint32]*session
	nextPID  uint32
	nextQID  int64
	copies   []CopyRecord
	closed   bool
}

// Start starts a server listening on cfg.Listen (default 127.0.0.1:0).
func Start(cfg Config) (*Server, error) {
	if cfg.Upstream == "" {
		return nil, errors.New("redshift stand-in: Config.Upstream is required")
	}
	if cfg.S3Endpoint == "" {
		return nil, errors.New("redshift stand-in: Config.S3Endpoint is required")
	}
	if cfg.S3Region == "" {
		cfg.S3Region = "us-east-1"
	}
	if cfg.AccessKeyID == "" {
		cfg.AccessKeyID, cfg.SecretAccessKey = "S3RVER", "S3RVER"
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	up, err := pgconn.ParseConfig(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("redshift stand-in: upstream DSN: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("redshift stand-in: listening: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, upstream: up, ln: ln, log: log.With("component", "redshift-standin"),
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}},
		ctx:  ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, sessions: map[uint32]*session{}, nextPID: 1000,
	}
	s.wg.Add(1)
	go s.accept()
	s.log.Info("listening", "addr", s.Addr())
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// DSN is a connection string for the server:
// postgres://user:password@addr/db?sslmode=disable (without the password
// when the server trusts every client).
func (s *Server) DSN(user, db string) string {
	u := url.URL{Scheme: "postgres", Host: s.Addr(), Path: "/" + db, RawQuery: "sslmode=disable"}
	if s.cfg.Password != "" {
		u.User = url.UserPassword(user, s.cfg.Password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// Copies returns every COPY statement received so far, oldest first.
func (s *Server) Copies() []CopyRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CopyRecord(nil), s.copies...)
}

// Close stops listening, closes every client connection (and so its
// upstream connection, rolling back open transactions) and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	s.http.CloseIdleConnections()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("redshift stand-in: closing listener: %w", err)
	}
	return nil
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept failed", "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.serve(c)
		}()
	}
}

func (s *Server) record(r CopyRecord) {
	s.mu.Lock()
	s.copies = append(s.copies, r)
	s.mu.Unlock()
}

func (s *Server) queryID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextQID++
	return s.nextQID
}

// session is one client connection and its upstream connection.
type session struct {
	srv     *Server
	conn    net.Conn
	be      *pgproto3.Backend
	up      *pgconn.PgConn
	log     *slog.Logger
	pid     uint32
	secret  []byte
	lastCnt int64 // pg_last_copy_count()
}

func fatal(code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg}
}

// serve runs one client connection: start-up, authentication, then the
// query loop.
func (s *Server) serve(c net.Conn) {
	be := pgproto3.NewBackend(c, c)
	be.SetMaxBodyLen(1 << 30)
	var startup *pgproto3.StartupMessage
	for startup == nil {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := c.Write([]byte{'N'}); err != nil {
				return
			}
		case *pgproto3.CancelRequest:
			s.cancelQuery(m.ProcessID, m.SecretKey)
			return
		case *pgproto3.StartupMessage:
			startup = m
		}
	}
	user := startup.Parameters["user"]
	if user == "" {
		be.Send(fatal("28000", "no PostgreSQL user name specified in startup packet"))
		_ = be.Flush()
		return
	}
	if startup.ProtocolVersion != pgproto3.ProtocolVersion30 {
		be.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0})
	}
	if !s.authenticate(be, user) {
		return
	}
	ss := &session{srv: s, conn: c, be: be, log: s.log.With("user", user, "remote", c.RemoteAddr().String())}
	up, err := s.connectUpstream(ss, startup.Parameters)
	if err != nil {
		ss.log.Error("upstream connection failed", "err", err)
		be.Send(fatal("08006", "the Redshift stand-in could not connect to its upstream PostgreSQL"))
		_ = be.Flush()
		return
	}
	ss.up = up
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = up.Close(ctx)
	}()
	ss.secret = make([]byte, 4)
	_, _ = rand.Read(ss.secret)
	s.mu.Lock()
	s.nextPID++
	ss.pid = s.nextPID
	s.sessions[ss.pid] = ss
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss.pid)
		s.mu.Unlock()
	}()

	be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{
		{"server_version", "8.0.2"}, {"client_encoding", "UTF8"}, {"server_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"},
		{"TimeZone", "UTC"}, {"is_superuser", "on"}, {"session_authorization", user},
		{"application_name", startup.Parameters["application_name"]},
	} {
		be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: ss.pid, SecretKey: ss.secret})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: up.TxStatus()})
	if be.Flush() != nil {
		return
	}
	ss.log.Debug("session started", "pid", ss.pid)
	ss.loop()
}

// authenticate runs the MD5 password exchange when a password is set.
func (s *Server) authenticate(be *pgproto3.Backend, user string) bool {
	if s.cfg.Password == "" {
		return true
	}
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	be.Send(&pgproto3.AuthenticationMD5Password{Salt: salt})
	if be.Flush() != nil {
		return false
	}
	if err := be.SetAuthType(pgproto3.AuthTypeMD5Password); err != nil {
		return false
	}
	msg, err := be.Receive()
	if err != nil {
		return false
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	inner := md5.Sum([]byte(s.cfg.Password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt[:]...))
	want := "md5" + hex.EncodeToString(outer[:])
	if !ok || subtle.ConstantTimeCompare([]byte(pm.Password), []byte(want)) != 1 {
		s.log.Warn("password authentication failed", "user", user)
		be.Send(fatal("28P01", fmt.Sprintf("password authentication failed for user %q", user)))
		_ = be.Flush()
		return false
	}
	return true
}

func (s *Server) connectUpstream(ss *session, params map[string]string) (*pgconn.PgConn, error) {
	cfg := s.upstream.Copy()
	rp := map[string]string{}
	for k, v := range cfg.RuntimeParams {
		rp[k] = v
	}
	// The stand-in announces these settings (as Redshift's defaults), so
	// the upstream session must have them.
	rp["TimeZone"], rp["DateStyle"], rp["client_encoding"] = "UTC", "ISO, MDY", "UTF8"
	for _, k := range []string{"application_name", "search_path"} {
		if v, ok := params[k]; ok {
			rp[k] = v
		}
	}
	cfg.RuntimeParams = rp
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		nr := pgproto3.NoticeResponse(*toErrorResponse((*pgconn.PgError)(n)))
		ss.be.Send(&nr)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
	defer cancel()
	up, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting upstream: %w", err)
	}
	return up, nil
}

func (s *Server) cancelQuery(pid uint32, key []byte) {
	s.mu.Lock()
	ss := s.sessions[pid]
	s.mu.Unlock()
	if ss == nil || subtle.ConstantTimeCompare(ss.secret, key) != 1 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	if err := ss.up.CancelRequest(ctx); err != nil {
		ss.log.Warn("forwarding a cancel request failed", "err", err)
	}
}

const extendedRefused = "feature not supported: extended query protocol; use simple protocol"

// loop serves the client's messages until Terminate or a broken connection.
func (ss *session) loop() {
	discarding := false // after an extended-protocol error, until Sync
	for {
		msg, err := ss.be.Receive()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			if !ss.query(m.String) {
				return
			}
			ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: ss.up.TxStatus()})
		case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close:
			if !discarding {
				ss.be.Send(toErrorResponse(pgErr("0A000", extendedRefused)))
				discarding = true
			}
		case *pgproto3.Sync:
			discarding = false
			ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: ss.up.TxStatus()})
		case *pgproto3.Flush, *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
			// Nothing to flush beyond what follows; copy messages outside a
			// COPY are ignored, as PostgreSQL does.
		case *pgproto3.Terminate:
			return
		case *pgproto3.FunctionCall:
			ss.be.Send(toErrorResponse(pgErr("0A000", "feature not supported: function call protocol")))
			ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: ss.up.TxStatus()})
		default:
			ss.be.Send(fatal("08P01", fmt.Sprintf("unexpected message %T", msg)))
			_ = ss.be.Flush()
			return
		}
		if ss.be.Flush() != nil {
			return
		}
	}
}

// query handles one simple-protocol query message. It returns false when
// the session must end (the upstream connection is lost).
func (ss *session) query(sql string) bool {
	stmts, ok := splitStatements(sql)
	if ok {
		if len(stmts) == 0 {
			ss.be.Send(&pgproto3.EmptyQueryResponse{})
			return true
		}
		for _, st := range stmts {
			if st.firstWord() != "copy" {
				continue
			}
			if len(stmts) > 1 {
				ss.be.Send(toErrorResponse(pgErr("0A000",
					"the Redshift stand-in needs a COPY to be the only statement of its query message")))
				return true
			}
			return ss.copyStatement(st)
		}
		if len(stmts) == 1 && stmts[0].isLastCopyCount() && ss.up.TxStatus() != 'E' {
			ss.be.Send(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{
				Name: []byte("pg_last_copy_count"), DataTypeOID: 20, DataTypeSize: 8, TypeModifier: -1,
			}}})
			ss.be.Send(&pgproto3.DataRow{Values: [][]byte{fmt.Appendf(nil, "%d", ss.lastCnt)}})
			ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
			return true
		}
	}
	return ss.forward(sql)
}

// forward runs sql on the upstream connection and relays its results.
func (ss *session) forward(sql string) bool {
	mrr := ss.up.Exec(ss.srv.ctx, sql)
	sentErr := false
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		fds := rr.FieldDescriptions()
		if len(fds) > 0 {
			fields := make([]pgproto3.FieldDescription, len(fds))
			for i, f := range fds {
				fields[i] = pgproto3.FieldDescription{
					Name: []byte(f.Name), TableOID: f.TableOID, TableAttributeNumber: f.TableAttributeNumber,
					DataTypeOID: f.DataTypeOID, DataTypeSize: f.DataTypeSize, TypeModifier: f.TypeModifier, Format: f.Format,
				}
			}
			ss.be.Send(&pgproto3.RowDescription{Fields: fields})
		}
		for n := 1; rr.NextRow(); n++ {
			ss.be.Send(&pgproto3.DataRow{Values: rr.Values()})
			if n%4096 == 0 && ss.be.Flush() != nil {
				_, _ = rr.Close()
				_ = mrr.Close()
				return false
			}
		}
		tag, err := rr.Close()
		switch {
		case err != nil:
			if !ss.sendError(err) {
				return false
			}
			sentErr = true
		case tag.String() == "" && len(fds) == 0:
			ss.be.Send(&pgproto3.EmptyQueryResponse{})
		default:
			ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag.String())})
		}
	}
	if err := mrr.Close(); err != nil && !sentErr {
		return ss.sendError(err)
	}
	return !ss.up.IsClosed()
}

// sendError relays an upstream error; a non-PostgreSQL error means the
// upstream connection is gone, which ends the session.
func (ss *session) sendError(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		ss.be.Send(toErrorResponse(pe))
		return true
	}
	ss.log.Error("upstream connection lost", "err", err)
	ss.be.Send(fatal("57P01", "terminating connection: the Redshift stand-in lost its upstream connection"))
	return false
}

// toErrorResponse converts a PostgreSQL error into its wire message.
func toErrorResponse(e *pgconn.PgError) *pgproto3.ErrorResponse {
	sev := e.Severity
	if sev == "" {
		sev = "ERROR"
	}
	return &pgproto3.ErrorResponse{
		Severity: sev, SeverityUnlocalized: sev, Code: e.Code, Message: e.Message,
		Detail: e.Detail, Hint: e.Hint, Position: e.Position, InternalPosition: e.InternalPosition,
		InternalQuery: e.InternalQuery, Where: e.Where, SchemaName: e.SchemaName, TableName: e.TableName,
		ColumnName: e.ColumnName, DataTypeName: e.DataTypeName, ConstraintName: e.ConstraintName,
		File: e.File, Line: e.Line, Routine: e.Routine,
	}
}
