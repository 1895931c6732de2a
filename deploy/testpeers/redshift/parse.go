package redshift

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// Credentials kinds of a COPY, as CopyRecord.Credentials reports them.
const (
	CredentialsIAMRole    = "iam_role"
	CredentialsAccessKeys = "access_keys"
)

// Data formats of a COPY.
const (
	formatText = "text" // Redshift's default: character-delimited UTF-8 text
	formatCSV  = "csv"
	formatJSON = "json"
)

// copyCmd is a parsed Redshift COPY ... FROM 's3://...' statement.
type copyCmd struct {
	schema, table string
	columns       []string // nil: every column of the table
	from          string

	creds                                      string // CredentialsIAMRole or CredentialsAccessKeys
	roleARN                                    string
	accessKeyID, secretAccessKey, sessionToken string

	manifest    bool
	format      string
	jsonOpt     string // "auto" or "auto ignorecase"
	delimiter   string
	quote       byte
	compression string // "", "gzip", "bzip2" or "zstd"
	region      string

	ignoreHeader     int
	maxError         int
	ignoreAllErrors  bool
	timeFormat       string // "", "auto", "epochsecs", "epochmillisecs"
	truncateColumns  bool
	blanksAsNull     bool
	emptyAsNull      bool
	acceptInvChars   bool
	invCharRepl      byte
	trimBlanks       bool
	ignoreBlankLines bool
	fillRecord       bool
	escape           bool
	roundDec         bool
	nullAs           string
}

// unsupported are COPY options of Redshift that the stand-in does not
// implement: they change what a load does, so they are refused rather than
// ignored.
var unsupported = map[string]bool{
	"avro": true, "parquet": true, "orc": true, "fixedwidth": true, "shapefile": true,
	"rcfile": true, "sequencefile": true, "lzop": true, "removequotes": true,
	"explicit_ids": true, "noload": true, "encrypted": true, "master_symmetric_key": true,
	"ssh": true, "readratio": true, "acceptanydate": true, "jsonpaths": true,
	"serializetojson": true,
}

var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$`)

func pgErr(code, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: fmt.Sprintf(format, args...)}
}

func errUnsupported(what string) *pgconn.PgError {
	return pgErr("0A000", "%s is not supported by the Redshift stand-in", what)
}

const invalidCredentials = "Invalid credentials. Must be of the format: credentials " +
	"'aws_iam_role=...' or 'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'"

type copyParser struct {
	sql  string
	toks []token
	i    int
	cmd  copyCmd

	sawCSV, sawQuote, sawDelimiter, sawKeys, sawRole, sawCredentials bool
	sawNullAs                                                        bool
}

// parseCopy parses a statement whose first word is COPY. Only the
// COPY ... FROM 's3://...' form is accepted.
func parseCopy(st statement) (*copyCmd, *pgconn.PgError) {
	p := &copyParser{sql: st.text, toks: st.toks}
	p.cmd.invCharRepl = '?'
	p.cmd.nullAs = `\N`
	if err := p.parse(); err != nil {
		return nil, err
	}
	return &p.cmd, nil
}

func (p *copyParser) peek() token { return p.toks[p.i] }

func (p *copyParser) next() token {
	t := p.toks[p.i]
	if t.kind != tkEOF {
		p.i++
	}
	return t
}

// accept consumes the current token if it is one of the given keywords.
func (p *copyParser) accept(words ...string) (string, bool) {
	t := p.peek()
	if t.kind != tkWord {
		return "", false
	}
	for _, w := range words {
		if t.text == w {
			p.i++
			return w, true
		}
	}
	return "", false
}

func (p *copyParser) syntaxErr(t token) *pgconn.PgError {
	near := p.sql[t.pos:t.end]
	if t.kind == tkEOF {
		e := pgErr("42601", "syntax error at end of input")
		e.Position = int32(utf8.RuneCountInString(p.sql[:t.pos]) + 1)
		return e
	}
	e := pgErr("42601", "syntax error at or near %q", near)
	e.Position = int32(utf8.RuneCountInString(p.sql[:t.pos]) + 1)
	return e
}

func (p *copyParser) ident() (string, *pgconn.PgError) {
	t := p.next()
	if t.kind != tkWord && t.kind != tkQIdent {
		return "", p.syntaxErr(t)
	}
	return t.text, nil
}

func (p *copyParser) str() (string, *pgconn.PgError) {
	p.accept("as")
	t := p.next()
	if t.kind != tkString {
		return "", p.syntaxErr(t)
	}
	return t.text, nil
}

func (p *copyParser) number() (int, *pgconn.PgError) {
	p.accept("as")
	t := p.next()
	n, err := strconv.Atoi(t.text)
	if t.kind != tkNumber || err != nil {
		return 0, p.syntaxErr(t)
	}
	return n, nil
}

func (p *copyParser) punct(c string) bool {
	if t := p.peek(); t.kind == tkPunct && t.text == c {
		p.i++
		return true
	}
	return false
}

func (p *copyParser) parse() *pgconn.PgError {
	p.next() // COPY
	name, err := p.ident()
	if err != nil {
		return err
	}
	p.cmd.table = name
	if p.punct(".") {
		if p.cmd.table, err = p.ident(); err != nil {
			return err
		}
		p.cmd.schema = name
		if p.punct(".") {
			return errUnsupported("a three-part table name (database.schema.table)")
		}
	}
	if p.punct("(") {
		for {
			col, err := p.ident()
			if err != nil {
				return err
			}
			p.cmd.columns = append(p.cmd.columns, col)
			if p.punct(")") {
				break
			}
			if !p.punct(",") {
				return p.syntaxErr(p.peek())
			}
		}
	}
	if _, ok := p.accept("from"); !ok {
		if w, ok := p.accept("to"); ok {
			return errUnsupported("COPY " + strings.ToUpper(w) + " (use UNLOAD on Redshift)")
		}
		return p.syntaxErr(p.peek())
	}
	t := p.next()
	switch {
	case t.kind == tkWord && (t.text == "stdin" || t.text == "stdout"):
		return errUnsupported("COPY FROM STDIN")
	case t.kind != tkString:
		return p.syntaxErr(t)
	case !strings.HasPrefix(t.text, "s3://"):
		return errUnsupported("COPY from a source other than Amazon S3 ('s3://...')")
	}
	p.cmd.from = t.text
	for p.peek().kind != tkEOF {
		if err := p.option(); err != nil {
			return err
		}
	}
	return p.validate()
}

func (p *copyParser) option() *pgconn.PgError {
	t := p.next()
	if t.kind != tkWord {
		return p.syntaxErr(t)
	}
	var err *pgconn.PgError
	c := &p.cmd
	switch w := t.text; w {
	case "with":
		if _, ok := p.accept("credentials"); !ok {
			return p.syntaxErr(p.peek())
		}
		return p.credentials()
	case "credentials":
		return p.credentials()
	case "iam_role":
		p.sawRole = true
		if _, ok := p.accept("default"); ok {
			c.roleARN = "default"
			return nil
		}
		c.roleARN, err = p.str()
	case "access_key_id":
		p.sawKeys = true
		c.accessKeyID, err = p.str()
	case "secret_access_key":
		p.sawKeys = true
		c.secretAccessKey, err = p.str()
	case "session_token":
		p.sawKeys = true
		c.sessionToken, err = p.str()
	case "manifest":
		c.manifest = true
	case "format":
		p.accept("as")
		if nt := p.peek(); nt.kind != tkWord || !(nt.text == "csv" || nt.text == "json" || unsupported[nt.text]) {
			return p.syntaxErr(nt)
		}
	case "csv":
		p.sawCSV = true
		c.format = formatCSV
	case "quote":
		p.sawQuote = true
		var q string
		if q, err = p.str(); err == nil {
			if len(q) != 1 {
				return pgErr("42601", "QUOTE must be a single character")
			}
			c.quote = q[0]
		}
	case "json":
		c.format, c.jsonOpt = formatJSON, "auto"
		p.accept("as")
		if p.peek().kind == tkString {
			opt := p.next().text
			switch {
			case opt == "auto" || opt == "auto ignorecase":
				c.jsonOpt = opt
			case strings.HasPrefix(opt, "s3://"):
				return errUnsupported("JSON with a JSONPaths file")
			default:
				return errUnsupported(fmt.Sprintf("JSON '%s'", opt))
			}
		}
	case "delimiter":
		p.sawDelimiter = true
		var d string
		if d, err = p.str(); err == nil {
			if c.delimiter, err = unescapeDelimiter(d); err == nil && c.delimiter == "" {
				return pgErr("42601", "DELIMITER must not be empty")
			}
		}
	case "gzip", "bzip2", "zstd":
		if c.compression != "" && c.compression != w {
			return pgErr("42601", "conflicting or redundant options: %s and %s", strings.ToUpper(c.compression), strings.ToUpper(w))
		}
		c.compression = w
	case "ignoreheader":
		c.ignoreHeader, err = p.number()
	case "maxerror":
		c.maxError, err = p.number()
		if err == nil && c.maxError > 100000 {
			return pgErr("42601", "MAXERROR must be between 0 and 100000")
		}
	case "ignoreallerrors":
		c.ignoreAllErrors = true
	case "timeformat":
		var f string
		if f, err = p.str(); err == nil {
			switch f {
			case "auto", "epochsecs", "epochmillisecs":
				c.timeFormat = f
			case "YYYY-MM-DD HH:MI:SS":
			default:
				return errUnsupported(fmt.Sprintf("TIMEFORMAT '%s' (only 'auto', 'epochsecs', 'epochmillisecs' and the default)", f))
			}
		}
	case "dateformat":
		var f string
		if f, err = p.str(); err == nil && f != "auto" && f != "YYYY-MM-DD" {
			return errUnsupported(fmt.Sprintf("DATEFORMAT '%s' (only 'auto' and the default)", f))
		}
	case "region":
		c.region, err = p.str()
	case "truncatecolumns":
		c.truncateColumns = true
	case "blanksasnull":
		c.blanksAsNull = true
	case "emptyasnull":
		c.emptyAsNull = true
	case "trimblanks":
		c.trimBlanks = true
	case "ignoreblanklines":
		c.ignoreBlankLines = true
	case "fillrecord":
		c.fillRecord = true
	case "escape":
		c.escape = true
	case "roundec":
		c.roundDec = true
	case "acceptinvchars":
		c.acceptInvChars = true
		p.accept("as")
		if p.peek().kind == tkString {
			r := p.next().text
			if len(r) != 1 || r[0] == 0 || r[0] >= 0x80 {
				return pgErr("42601", "ACCEPTINVCHARS replacement must be one ASCII character")
			}
			c.invCharRepl = r[0]
		}
	case "null":
		p.sawNullAs = true
		c.nullAs, err = p.str()
	case "compupdate", "statupdate":
		p.accept("on", "off", "true", "false", "preset")
	case "comprows":
		_, err = p.number()
	case "encoding":
		p.accept("as")
		if enc, ok := p.accept("utf8"); !ok || enc != "utf8" {
			return errUnsupported("ENCODING other than UTF8")
		}
	default:
		if unsupported[w] {
			return errUnsupported("COPY option " + strings.ToUpper(w))
		}
		return p.syntaxErr(t)
	}
	return err
}

// credentials parses CREDENTIALS [AS] 'k=v;k=v'.
func (p *copyParser) credentials() *pgconn.PgError {
	s, err := p.str()
	if err != nil {
		return err
	}
	p.sawCredentials = true
	c := &p.cmd
	for _, kv := range strings.Split(s, ";") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return pgErr("XX000", invalidCredentials)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "aws_iam_role":
			c.roleARN = v
		case "aws_access_key_id":
			c.accessKeyID = v
		case "aws_secret_access_key":
			c.secretAccessKey = v
		case "token":
			c.sessionToken = v
		case "master_symmetric_key":
			return errUnsupported("client-side encryption (master_symmetric_key)")
		default:
			return pgErr("XX000", invalidCredentials)
		}
	}
	return nil
}

func (p *copyParser) validate() *pgconn.PgError {
	c := &p.cmd
	conflict := func(what string) *pgconn.PgError {
		return pgErr("42601", "conflicting or redundant options: %s", what)
	}
	switch {
	case (p.sawRole && (p.sawKeys || p.sawCredentials)) || (p.sawKeys && p.sawCredentials):
		return conflict("IAM_ROLE, ACCESS_KEY_ID/SECRET_ACCESS_KEY/SESSION_TOKEN and CREDENTIALS are alternatives")
	case c.roleARN != "" && (c.accessKeyID != "" || c.secretAccessKey != "" || c.sessionToken != ""):
		return pgErr("XX000", invalidCredentials)
	case c.roleARN != "":
		c.creds = CredentialsIAMRole
		if c.roleARN != "default" {
			for _, arn := range strings.Split(c.roleARN, ",") {
				if !roleARN.MatchString(arn) {
					return pgErr("XX000", "Invalid IAM role ARN: %q", arn)
				}
			}
		}
	case c.accessKeyID != "" && c.secretAccessKey != "":
		c.creds = CredentialsAccessKeys
	default:
		return pgErr("XX000", invalidCredentials)
	}
	if c.format == "" {
		c.format = formatText
	}
	if p.sawQuote && !p.sawCSV {
		return pgErr("42601", "QUOTE can only be used with CSV")
	}
	if p.sawCSV && c.format == formatJSON {
		return conflict("CSV and JSON")
	}
	if c.format == formatJSON && (p.sawDelimiter || c.escape || c.fillRecord || c.ignoreBlankLines || p.sawNullAs) {
		return pgErr("42601", "DELIMITER, ESCAPE, FILLRECORD, IGNOREBLANKLINES and NULL AS cannot be used with JSON")
	}
	if c.format == formatCSV && c.escape {
		return conflict("CSV and ESCAPE")
	}
	if c.delimiter == "" {
		c.delimiter = "|"
		if c.format == formatCSV {
			c.delimiter = ","
		}
	}
	if c.quote == 0 {
		c.quote = '"'
	}
	if c.format == formatCSV && len(c.delimiter) == 1 && c.delimiter[0] == c.quote {
		return conflict("DELIMITER and QUOTE are the same character")
	}
	if c.ignoreAllErrors && c.maxError > 0 {
		return conflict("IGNOREALLERRORS and MAXERROR")
	}
	return nil
}

// unescapeDelimiter reads COPY's delimiter notation: '\t' is a tab and
// '\ddd' an octal character code; '\\' is a backslash.
func unescapeDelimiter(s string) (string, *pgconn.PgError) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch n := s[i+1]; {
		case n == 't':
			b.WriteByte('\t')
			i++
		case n == '\\':
			b.WriteByte('\\')
			i++
		case n >= '0' && n <= '7' && i+3 < len(s):
			v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
			if err != nil {
				return "", pgErr("42601", "invalid octal delimiter %q", s)
			}
			b.WriteByte(byte(v))
			i += 3
		default:
			b.WriteByte('\\')
		}
	}
	return b.String(), nil
}

// secretOptions are the keywords whose following string literal is secret.
var secretOptions = map[string]bool{
	"secret_access_key": true, "session_token": true, "credentials": true, "master_symmetric_key": true,
}

// redactCopy replaces the secret string literals of a COPY statement
// (SECRET_ACCESS_KEY, SESSION_TOKEN, CREDENTIALS) with '***', for records
// and logs. Text that cannot be tokenized is replaced whole.
func redactCopy(sql string) string {
	toks, ok := lex(sql)
	if !ok {
		return "COPY ... (unparsable statement redacted)"
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(toks); i++ {
		if toks[i].kind != tkWord || !secretOptions[toks[i].text] {
			continue
		}
		j := i + 1
		if j < len(toks) && toks[j].kind == tkWord && toks[j].text == "as" {
			j++
		}
		if j < len(toks) && toks[j].kind == tkString {
			b.WriteString(sql[last:toks[j].pos])
			b.WriteString("'***'")
			last = toks[j].end
			i = j
		}
	}
	b.WriteString(sql[last:])
	return b.String()
}
