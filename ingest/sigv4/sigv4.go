// Package sigv4 verifies AWS Signature Version 4 on incoming requests, as
// an AWS JSON service does: the Authorization header or a presigned query
// string, the credential scope (date, region, service, terminator), the
// clock skew (15 minutes), the payload hash against the body, and the
// signature recomputed with the access key's secret. Its errors are the
// ones AWS's JSON services answer (Error: status, __type and message), so
// SDKs and the CLI report them as they would against AWS.
//
// It is the ingest tier's: the Firehose API verifies every request with
// it, and so will every later HTTP intake. It never logs and never puts a
// secret in an error.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// MaxSkew is how far a request's time may be from the server's.
const MaxSkew = 15 * time.Minute

const (
	timeFormat = "20060102T150405Z"
	dateFormat = "20060102"
	terminator = "aws4_request"
	// maxExpires bounds a presigned request's X-Amz-Expires (7 days).
	maxExpires = 7 * 24 * 60 * 60
)

// Key is an access key a Verifier accepts.
type Key struct {
	ID     string
	Secret string
	// SessionToken, when set, must come with every request signed with
	// the key (X-Amz-Security-Token), as with temporary credentials.
	SessionToken string
}

// Verifier checks signatures for one service.
type Verifier struct {
	// Service is the signing name, e.g. "firehose".
	Service string
	// Region, when set, is the only region a credential scope may name;
	// empty accepts any.
	Region string
	// Lookup returns the key of an access key id.
	Lookup func(id string) (Key, bool)
	// Now is the server's clock (default time.Now).
	Now func() time.Time
}

// Error is a refused request, as AWS answers it.
type Error struct {
	Status  int
	Code    string // the __type
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func incomplete(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "IncompleteSignatureException", Message: msg}
}

func invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "InvalidSignatureException", Message: fmt.Sprintf(format, args...)}
}

// ErrMissing is the answer to a request without any authentication.
var ErrMissing = &Error{Status: http.StatusBadRequest, Code: "MissingAuthenticationTokenException", Message: "Missing Authentication Token"}

// errUnknownKey is the answer to an access key id (or session token) the
// server does not know.
var errUnknownKey = &Error{Status: http.StatusForbidden, Code: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}

// mismatch is AWS's message for a signature that does not match; JSON
// services follow it with the canonical request and string to sign they
// computed, which is what a client author needs to find the difference.
const mismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// signed is what a request says about its signature.
type signed struct {
	id, date, region, service, term string // the credential scope
	headers                         []string
	signature                       string
	amzDate                         string
	t                               time.Time
	query                           bool // presigned
	expires                         int
	token                           string
	contentSHA                      string // x-amz-content-sha256, when sent
}

// Verify checks r, whose body is body (already read), and returns the
// access key id that signed it, or an *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) (string, error) {
	return v.VerifyPayload(r, PayloadHash(body))
}

// PayloadHash is the hex SHA-256 of a body, as a signature covers it.
func PayloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// VerifyPayload is Verify for a body whose PayloadHash the caller has
// computed (so it can hash while it does other work on the body).
func (v *Verifier) VerifyPayload(r *http.Request, payload string) (string, error) {
	s, err := parse(r)
	if err != nil {
		return "", err
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now().UTC()
	if s.query {
		if t.After(s.t.Add(time.Duration(s.expires) * time.Second)) {
			return "", &Error{Status: http.StatusForbidden, Code: "AccessDeniedException", Message: "Request has expired"}
		}
	}
	if !s.query || s.t.After(t) {
		switch {
		case s.t.Before(t.Add(-MaxSkew)):
			return "", invalid("Signature expired: %s is now earlier than %s (%s - 15 min.)", s.amzDate, t.Add(-MaxSkew).Format(timeFormat), t.Format(timeFormat))
		case s.t.After(t.Add(MaxSkew)):
			return "", invalid("Signature not yet current: %s is still later than %s (%s + 15 min.)", s.amzDate, t.Add(MaxSkew).Format(timeFormat), t.Format(timeFormat))
		}
	}
	switch {
	case s.date != s.t.Format(dateFormat):
		return "", invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", s.date, s.t.Format(dateFormat), s.amzDate)
	case s.term != terminator:
		return "", invalid("Credential should be scoped with a valid terminator: '%s', not '%s'.", terminator, s.term)
	case s.service != v.Service:
		return "", invalid("Credential should be scoped to correct service: '%s'. ", v.Service)
	case v.Region != "" && s.region != v.Region:
		return "", invalid("Credential should be scoped to a valid region. ")
	}
	key, ok := v.Lookup(s.id)
	if !ok || key.SessionToken != "" && subtle.ConstantTimeCompare([]byte(key.SessionToken), []byte(s.token)) != 1 {
		return "", errUnknownKey
	}
	if s.contentSHA != "" && s.contentSHA != payload {
		return "", invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	creq, err := canonicalRequest(r, s, payload)
	if err != nil {
		return "", err
	}
	scope := s.date + "/" + s.region + "/" + s.service + "/" + terminator
	h := sha256.Sum256([]byte(creq))
	sts := Algorithm + "\n" + s.amzDate + "\n" + scope + "\n" + hex.EncodeToString(h[:])
	k := hmacSHA256([]byte("AWS4"+key.Secret), s.date)
	k = hmacSHA256(k, s.region)
	k = hmacSHA256(k, s.service)
	k = hmacSHA256(k, terminator)
	want := hex.EncodeToString(hmacSHA256(k, sts))
	if subtle.ConstantTimeCompare([]byte(want), []byte(s.signature)) != 1 {
		return "", invalid("%s\n\nThe Canonical String for this request should have been\n'%s'\n\nThe String-to-Sign should have been\n'%s'\n", mismatch, creq, sts)
	}
	return s.id, nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// parse reads the signature's parts from the Authorization header or the
// query string, with the errors AWS gives for what is missing.
func parse(r *http.Request) (signed, error) {
	var s signed
	auth := r.Header.Get("Authorization")
	q := r.URL.Query()
	_, presigned := q["X-Amz-Algorithm"]
	switch {
	case auth != "" && presigned:
		return s, invalid("Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.")
	case auth == "" && !presigned:
		return s, ErrMissing
	}
	var credential, signedHeaders string
	if auth != "" {
		alg, rest, _ := strings.Cut(auth, " ")
		params := map[string]string{}
		for _, p := range strings.FieldsFunc(rest, func(c rune) bool { return c == ',' || c == ' ' }) {
			k, val, _ := strings.Cut(p, "=")
			params[k] = val
		}
		var msg string
		for _, p := range []string{"Credential", "Signature", "SignedHeaders"} {
			if params[p] == "" {
				msg += "Authorization header requires '" + p + "' parameter. "
			}
		}
		s.amzDate = r.Header.Get("X-Amz-Date")
		if s.amzDate == "" && r.Header.Get("Date") == "" {
			msg += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
		}
		if msg != "" {
			return s, incomplete(msg + "Authorization=" + auth)
		}
		if alg != Algorithm {
			return s, incomplete("Unsupported AWS 'algorithm': '" + alg + "'")
		}
		credential, signedHeaders, s.signature = params["Credential"], params["SignedHeaders"], params["Signature"]
		if s.amzDate == "" {
			t, err := http.ParseTime(r.Header.Get("Date"))
			if err != nil {
				return s, incomplete("Date must be in ISO-8601 'basic format'. Got '" + r.Header.Get("Date") + "'. See http://en.wikipedia.org/wiki/ISO_8601")
			}
			s.amzDate = t.UTC().Format(timeFormat)
		}
		s.token = r.Header.Get("X-Amz-Security-Token")
	} else {
		var msg string
		for _, p := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"} {
			if q.Get(p) == "" {
				msg += "AWS query-string parameters must include '" + p + "'. "
			}
		}
		if msg != "" {
			return s, incomplete(msg + "Re-examine the query-string parameters.")
		}
		if alg := q.Get("X-Amz-Algorithm"); alg != Algorithm {
			return s, incomplete("Unsupported AWS 'algorithm': '" + alg + "'")
		}
		credential, signedHeaders, s.signature, s.amzDate = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature"), q.Get("X-Amz-Date")
		s.query = true
		s.expires = 900
		if e := q.Get("X-Amz-Expires"); e != "" {
			n, err := strconv.Atoi(e)
			if err != nil || n < 0 || n > maxExpires {
				return s, invalid("X-Amz-Expires must be between 0 and %d seconds, got '%s'.", maxExpires, e)
			}
			s.expires = n
		}
		s.token = q.Get("X-Amz-Security-Token")
	}
	t, err := time.Parse(timeFormat, s.amzDate)
	if err != nil {
		return s, incomplete("Date must be in ISO-8601 'basic format'. Got '" + s.amzDate + "'. See http://en.wikipedia.org/wiki/ISO_8601")
	}
	s.t = t
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[0] == "" {
		return s, incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '" + credential + "'")
	}
	s.id, s.date, s.region, s.service, s.term = parts[0], parts[1], parts[2], parts[3], parts[4]
	s.headers = strings.Split(signedHeaders, ";")
	if !sort.StringsAreSorted(s.headers) || !containsHost(s.headers) {
		return s, invalid("The request signature we calculated does not match the signature you provided: SignedHeaders must be sorted, lowercase and include host.")
	}
	s.contentSHA = r.Header.Get("X-Amz-Content-Sha256")
	return s, nil
}

func containsHost(headers []string) bool {
	for _, h := range headers {
		if h == "host" {
			return true
		}
	}
	return false
}

// canonicalRequest is SigV4's canonical form of r: method, path, query,
// the signed headers' values, their names, and the payload's hash.
func canonicalRequest(r *http.Request, s signed, payload string) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	// Services other than S3 sign the path URI-encoded once more.
	b.WriteString(escape(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query(), s.query))
	b.WriteByte('\n')
	for _, name := range s.headers {
		if name != strings.ToLower(name) {
			return "", invalid("SignedHeaders must be lowercase: '%s'", name)
		}
		var values []string
		switch name {
		case "host":
			values = []string{r.Host}
		case "content-length":
			values = r.Header.Values("Content-Length")
			if len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		default:
			values = r.Header.Values(name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.Join(strings.Fields(v), " "))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(s.headers, ";"))
	b.WriteByte('\n')
	if s.query {
		payload = "UNSIGNED-PAYLOAD"
		if s.contentSHA != "" {
			payload = s.contentSHA
		}
	}
	b.WriteString(payload)
	return b.String(), nil
}

// canonicalQuery sorts the query's parameters by name then value, each
// URI-encoded; a presigned request's own signature is left out.
func canonicalQuery(q url.Values, presigned bool) string {
	type kv struct{ k, v string }
	var all []kv
	for k, vs := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			all = append(all, kv{escape(k, true), escape(v, true)})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].k != all[j].k {
			return all[i].k < all[j].k
		}
		return all[i].v < all[j].v
	})
	parts := make([]string, len(all))
	for i, p := range all {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// escape URI-encodes s as SigV4 does: every byte but the unreserved
// characters A-Z a-z 0-9 - _ . ~ (and '/' unless encodeSlash) as %XX.
func escape(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
