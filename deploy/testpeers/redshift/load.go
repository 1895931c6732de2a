package redshift

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// copyStatement runs a COPY statement and answers it. It returns false when
// the session must end.
func (ss *session) copyStatement(st statement) bool {
	rec := CopyRecord{SQL: redactCopy(st.text), InTransaction: ss.up.TxStatus() == 'T'}
	cmd, perr := parseCopy(st)
	var err error
	if perr != nil {
		err = perr
	} else {
		rec.Table, rec.Columns, rec.From, rec.Manifest = cmd.table, cmd.columns, cmd.from, cmd.manifest
		if cmd.schema != "" {
			rec.Table = cmd.schema + "." + cmd.table
		}
		rec.Credentials, rec.Format = cmd.creds, cmd.format
		if cmd.creds == CredentialsAccessKeys {
			rec.AccessKeyID = cmd.accessKeyID
		}
		err = ss.runCopy(cmd, &rec)
	}
	var pe *pgconn.PgError
	if err != nil && !errors.As(err, &pe) {
		rec.Err = err
		ss.srv.record(rec)
		return ss.sendError(err)
	}
	if pe != nil {
		rec.Err, rec.Rows = pe, 0
		ss.lastCnt = 0
		ss.log.Warn("COPY failed", "sql", rec.SQL, "code", pe.Code, "err", pe.Message, "detail", pe.Detail)
		ss.be.Send(toErrorResponse(pe))
	} else {
		ss.lastCnt = rec.Rows
		ss.log.Info("COPY loaded", "table", rec.Table, "from", rec.From, "credentials", rec.Credentials,
			"objects", len(rec.Objects), "rows", rec.Rows, "rejected", len(rec.Rejected))
		ss.info(fmt.Sprintf("Load into table '%s' completed, %d record(s) loaded successfully.", cmd.table, rec.Rows))
		if n := len(rec.Rejected); n > 0 {
			ss.info(fmt.Sprintf("Load into table '%s' completed, %d record(s) could not be loaded.  "+
				"Check 'stl_load_errors' system table for details.", cmd.table, n))
		}
		ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("COPY")})
	}
	ss.srv.record(rec)
	return true
}

func (ss *session) info(msg string) {
	ss.be.Send(&pgproto3.NoticeResponse{Severity: "INFO", SeverityUnlocalized: "INFO", Code: "00000", Message: msg})
}

// exec runs a statement of the stand-in's own on the upstream connection.
func (ss *session) exec(ctx context.Context, sql string) error {
	return ss.up.Exec(ctx, sql).Close()
}

// loader runs one COPY's load: it streams the rows it decodes from S3, as
// CSV, into the upstream's COPY FROM STDIN.
type loader struct {
	ss      *session
	cmd     *copyCmd
	cols    []column
	s3      *s3.Client
	copySQL string
	qid     int64

	skip   map[rowKey]bool // rows PostgreSQL rejected in an earlier attempt
	pgErrs []LoadError     // their errors
	goErrs []LoadError     // rows this attempt rejected before PostgreSQL saw them
	keys   []rowPos        // the record of each line sent to PostgreSQL
	loaded []string        // objects read
	objs   []object        // objects listed
	fatal  *pgconn.PgError // what ended the attempt's stream
}

// rowKey names a record: its object's index and its index in the object.
type rowKey struct{ obj, rec int }

// rowPos is a record and its line (kept per row loaded, so small).
type rowPos struct{ obj, rec, line int32 }

// runCopy loads a parsed COPY. It returns a *pgconn.PgError to answer, or
// another error if the upstream connection broke.
func (ss *session) runCopy(cmd *copyCmd, rec *CopyRecord) error {
	ctx := ss.srv.ctx
	cols, err := ss.columns(ctx, cmd)
	if err != nil {
		return err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quoteIdent(c.name)
	}
	l := &loader{
		ss: ss, cmd: cmd, cols: cols, s3: ss.srv.s3Client(cmd), qid: ss.srv.queryID(),
		copySQL: fmt.Sprintf("COPY %s (%s) FROM STDIN WITH (FORMAT csv)", cmd.qualified(), strings.Join(names, ", ")),
		skip:    map[rowKey]bool{},
	}
	// Rows PostgreSQL rejects can be skipped (MAXERROR above 1) only by
	// retrying the load from a savepoint, which needs a transaction block.
	retry := cmd.maxError > 1 || cmd.ignoreAllErrors
	own := retry && ss.up.TxStatus() == 'I'
	if own {
		if err := ss.exec(ctx, "BEGIN"); err != nil {
			return err
		}
	}
	finish := func(err error) error {
		if own {
			end := "COMMIT"
			if err != nil {
				end = "ROLLBACK"
			}
			if e := ss.exec(ctx, end); e != nil && err == nil {
				err = e
			}
		}
		rec.Objects = l.loaded
		rec.Rejected = append(append([]LoadError(nil), l.pgErrs...), l.goErrs...)
		return err
	}
	for {
		if retry {
			if err := ss.exec(ctx, "SAVEPOINT sluice_rs_copy"); err != nil {
				return finish(err)
			}
		}
		rows, err := l.attempt(ctx)
		if err == nil {
			if retry {
				if err := ss.exec(ctx, "RELEASE SAVEPOINT sluice_rs_copy"); err != nil {
					return finish(err)
				}
			}
			rec.Rows = rows
			return finish(nil)
		}
		var pe *pgconn.PgError
		if l.fatal != nil || !errors.As(err, &pe) {
			return finish(err)
		}
		le, ok := l.rowError(pe)
		if !ok {
			return finish(pe)
		}
		l.pgErrs = append(l.pgErrs, le)
		if !retry || l.limitReached() {
			return finish(l.failure(le))
		}
		if err := ss.exec(ctx, "ROLLBACK TO SAVEPOINT sluice_rs_copy"); err != nil {
			return finish(err)
		}
		l.skip[l.lastKey(pe)] = true
	}
}

// attempt streams the whole load once into COPY FROM STDIN.
func (l *loader) attempt(ctx context.Context) (int64, error) {
	l.goErrs, l.keys, l.loaded, l.fatal = nil, nil, nil, nil
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		bw := bufio.NewWriterSize(pw, 256<<10)
		err := l.produce(ctx, bw)
		if err == nil {
			err = bw.Flush()
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			l.fatal = pe
		}
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		_ = pw.Close()
	}()
	tag, err := l.ss.up.CopyFrom(ctx, pr, l.copySQL)
	pr.CloseWithError(errors.New("COPY ended"))
	<-done
	if l.fatal != nil {
		// The stream failed: CopyFrom sent CopyFail, so the upstream
		// statement failed and an open transaction is aborted, as a failed
		// COPY aborts one on Redshift.
		return 0, l.fatal
	}
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// produce reads every object and writes its rows as CSV.
func (l *loader) produce(ctx context.Context, w *bufio.Writer) error {
	objs, perr := l.objects(ctx)
	if perr != nil {
		return perr
	}
	l.objs = objs
	for oi, o := range objs {
		data, err := getObject(ctx, l.s3, o.bucket, o.key)
		if err != nil {
			if isNoSuchKey(err) && l.cmd.manifest {
				if !o.mandatory {
					l.ss.log.Info("optional manifest entry missing, skipped", "url", o.url)
					continue
				}
				e := pgErr("XX000", "Mandatory url is not present in manifest file.")
				e.Detail = "S3 object not found: " + o.url + " (" + s3Exception(err) + ")"
				return e
			}
			return s3Failure("", o.url, err)
		}
		l.loaded = append(l.loaded, o.url)
		if data, err = decompress(data, l.cmd.compression); err != nil {
			e := pgErr("XX000", "%v", err)
			e.Detail = "File: " + o.url
			return e
		}
		if err := l.decodeObject(oi, o.url, data, w); err != nil {
			return err
		}
	}
	if len(l.loaded) == 0 {
		return pgErr("XX000", "No files found to load: none of the manifest's entries exists")
	}
	return nil
}

// decodeObject decodes one object's records, converts their fields and
// writes the good rows.
func (l *loader) decodeObject(oi int, url string, data []byte, w *bufio.Writer) error {
	data, skipped := skipLines(data, l.cmd.ignoreHeader)
	ri := -1
	emit := func(line int, fields []field, bad *LoadError) error {
		ri++
		key := rowKey{oi, ri}
		if l.skip[key] {
			return nil
		}
		if bad != nil {
			bad.File, bad.Line = url, line
			return l.reject(*bad)
		}
		vals := make([]field, len(fields))
		for i, f := range fields {
			v, le := convert(f, l.cols[i], l.cmd)
			if le != nil {
				le.File, le.Line, le.Column, le.Type = url, line, l.cols[i].name, l.cols[i].typ
				le.RawValue = truncate(f.s, 1024)
				return l.reject(*le)
			}
			vals[i] = v
		}
		writeCSV(w, vals)
		l.keys = append(l.keys, rowPos{int32(oi), int32(ri), int32(line)})
		return nil
	}
	switch l.cmd.format {
	case formatJSON:
		return decodeJSON(data, skipped+1, l.cols, l.cmd, emit)
	case formatCSV:
		return decodeCSV(data, skipped+1, len(l.cols), l.cmd, emit)
	default:
		return decodeText(data, skipped+1, len(l.cols), l.cmd, emit)
	}
}

// reject counts a rejected row; past MAXERROR it fails the load.
func (l *loader) reject(le LoadError) error {
	l.goErrs = append(l.goErrs, le)
	if l.limitReached() {
		return l.failure(le)
	}
	return nil
}

// limitReached applies MAXERROR: the load fails once the errors reach it
// (0 and 1 both fail on the first error).
func (l *loader) limitReached() bool {
	if l.cmd.ignoreAllErrors {
		return false
	}
	return len(l.goErrs)+len(l.pgErrs) >= max(l.cmd.maxError, 1)
}

// failure is Redshift's answer to a load with too many bad rows; the
// detail shows the error the way Redshift's ERROR detail block does.
func (l *loader) failure(le LoadError) *pgconn.PgError {
	e := pgErr("XX000", "Load into table '%s' failed. Check 'stl_load_errors' system table for details.", l.cmd.table)
	e.Detail = fmt.Sprintf("\n  -----------------------------------------------\n  error:  %s\n  code:      %d\n"+
		"  context:   %s\n  query:     %d\n  location:  redshift-standin\n  process:   redshift-standin [pid=%d]\n"+
		"  -----------------------------------------------\n",
		le.Reason, le.Code, fmt.Sprintf("%s line %d column %s: %s", le.File, le.Line, le.Column, truncate(le.RawValue, 80)),
		l.qid, l.ss.pid)
	return e
}

var copyWhere = regexp.MustCompile(`line (\d+)(?:, column ([^:]+))?(?:: "(.*)")?`)

// rowError maps a PostgreSQL data error of the COPY FROM STDIN to the S3
// record it came from.
func (l *loader) rowError(pe *pgconn.PgError) (LoadError, bool) {
	if !strings.HasPrefix(pe.Code, "22") && pe.Code != "23502" && pe.Code != "23514" {
		return LoadError{}, false
	}
	m := copyWhere.FindStringSubmatch(pe.Where)
	if m == nil {
		return LoadError{}, false
	}
	n, _ := strconv.Atoi(m[1])
	if n < 1 || n > len(l.keys) {
		return LoadError{}, false
	}
	le := LoadError{Column: m[2], RawValue: m[3], Reason: pe.Message}
	typ := ""
	for _, c := range l.cols {
		if c.name == m[2] {
			typ = c.typ
		}
	}
	le.Type, le.Code = typ, loadErrorCode(pe.Code, typ)
	p := l.keys[n-1]
	le.File, le.Line = l.objs[p.obj].url, int(p.line)
	return le, true
}

// lastKey is the record a PostgreSQL error names (rowError checked it).
func (l *loader) lastKey(pe *pgconn.PgError) rowKey {
	m := copyWhere.FindStringSubmatch(pe.Where)
	n, _ := strconv.Atoi(m[1])
	p := l.keys[n-1]
	return rowKey{int(p.obj), int(p.rec)}
}

func loadErrorCode(sqlstate, typ string) int {
	switch sqlstate {
	case "23502":
		return 1213
	case "22001", "22003":
		return 1204
	case "22021":
		return 1220
	case "22007", "22008":
		if typ == "date" {
			return 1205
		}
		return 1206
	}
	switch typ {
	case "int2", "int4", "int8":
		return 1207
	case "numeric":
		return 1209
	case "float4", "float8":
		return 1208
	case "bool":
		return 1210
	case "date":
		return 1205
	case "timestamp", "timestamptz":
		return 1206
	}
	return 1216
}

// writeCSV writes one row for COPY ... (FORMAT csv): NULL unquoted and
// empty, every value quoted.
func writeCSV(w *bufio.Writer, vals []field) {
	for i, v := range vals {
		if i > 0 {
			_ = w.WriteByte(',')
		}
		if v.null {
			continue
		}
		_ = w.WriteByte('"')
		_, _ = w.WriteString(strings.ReplaceAll(v.s, `"`, `""`))
		_ = w.WriteByte('"')
	}
	_ = w.WriteByte('\n')
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return truncBytes(s, n)
}

// columns reads the target table's columns from the upstream catalog: the
// COPY's column list, or every column that is not an identity or generated
// one.
func (ss *session) columns(ctx context.Context, cmd *copyCmd) ([]column, error) {
	sql := `SELECT a.attname, t.typname, t.typcategory, a.atttypmod, a.attnotnull,
	(a.attidentity <> '' OR a.attgenerated <> '')
	FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
	WHERE a.attrelid = ` + quoteLiteral(cmd.qualified()) + `::regclass AND a.attnum > 0 AND NOT a.attisdropped
	ORDER BY a.attnum`
	res, err := ss.up.Exec(ctx, sql).ReadAll()
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" {
			pe.Message = "Cannot COPY into nonexistent table " + cmd.table
			pe.Position = 0
		}
		return nil, err
	}
	all := map[string]column{}
	var order []column
	for _, r := range res {
		for _, row := range r.Rows {
			mod, _ := strconv.Atoi(string(row[3]))
			c := column{name: string(row[0]), typ: string(row[1]), typmod: int32(mod),
				notNull: string(row[4]) == "t", auto: string(row[5]) == "t"}
			if len(row[2]) > 0 {
				c.cat = row[2][0]
			}
			all[c.name] = c
			order = append(order, c)
		}
	}
	if cmd.columns == nil {
		var cols []column
		for _, c := range order {
			if !c.auto {
				cols = append(cols, c)
			}
		}
		return cols, nil
	}
	cols := make([]column, len(cmd.columns))
	for i, n := range cmd.columns {
		c, ok := all[n]
		if !ok {
			// PostgreSQL's COPY reports the unknown column (42703).
			c = column{name: n, typ: "text", cat: 'S', typmod: -1}
		}
		cols[i] = c
	}
	return cols, nil
}

// qualified is the target table, quoted for PostgreSQL.
func (c *copyCmd) qualified() string {
	if c.schema == "" {
		return quoteIdent(c.table)
	}
	return quoteIdent(c.schema) + "." + quoteIdent(c.table)
}
