package firehoseapi

import (
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error types (the `__type` of an error body).
const (
	errResourceNotFound   = "ResourceNotFoundException"
	errInvalidArgument    = "InvalidArgumentException"
	errValidation         = "ValidationException"
	errSerialization      = "SerializationException"
	errUnknownOperation   = "UnknownOperationException"
	errServiceUnavailable = "ServiceUnavailableException"
	errInternalFailure    = "InternalFailure"
	errAccessDenied       = "AccessDeniedException"
)

// Messages that clients and tests match on.
const (
	msgSlowDown       = "Slow down."
	msgBatchTooLarge  = "Records size exceeds 4 MB limit"
	msgKinesisSource  = "This operation is not permitted on KinesisStreamAsSource delivery stream type."
	msgInternal       = "An internal failure occurred. Please retry."
	msgStaticStreams  = "Delivery streams are defined in the Sluice configuration file and cannot be changed through the API: %s is not supported."
	namePatternString = "[a-zA-Z0-9_.-]+"
)

// apiError is a whole-call failure: an HTTP status and the AWS JSON error
// body {"__type": Type, "message": Message}.
type apiError struct {
	Status  int
	Type    string
	Message string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func newError(status int, typ, msg string) *apiError {
	return &apiError{Status: status, Type: typ, Message: msg}
}

func notFound(name, account string) *apiError {
	return newError(http.StatusBadRequest, errResourceNotFound,
		"Firehose "+name+" under account "+account+" not found.")
}

// validation collects Coral-style constraint violations into one
// ValidationException: "N validation error(s) detected: clause; clause".
type validation struct {
	clauses []string
}

// add records "Value <value> at '<path>' failed to satisfy constraint: <constraint>".
// value is rendered as given (quoted by the caller, or "null").
func (v *validation) add(value, path, constraint string) {
	v.clauses = append(v.clauses, "Value "+value+" at '"+path+"' failed to satisfy constraint: "+constraint)
}

func (v *validation) err() *apiError {
	if len(v.clauses) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(v.clauses)))
	if len(v.clauses) == 1 {
		b.WriteString(" validation error detected: ")
	} else {
		b.WriteString(" validation errors detected: ")
	}
	b.WriteString(strings.Join(v.clauses, "; "))
	return newError(http.StatusBadRequest, errValidation, b.String())
}

// quoteValue renders a string member value the way Coral does: 'value'.
func quoteValue(s string) string { return "'" + s + "'" }

// byteBufferValue renders a blob the way the Java service does.
func byteBufferValue(n int) string {
	s := strconv.Itoa(n)
	return "'java.nio.HeapByteBuffer[pos=0 lim=" + s + " cap=" + s + "]'"
}

// checkStreamName validates a required DeliveryStreamName-like member.
func (v *validation) checkStreamName(name string, present bool, path string) {
	if !present {
		v.add("null", path, "Member must not be null")
		return
	}
	v.checkOptionalStreamName(name, path)
}

// checkOptionalStreamName validates a present stream-name member.
func (v *validation) checkOptionalStreamName(name, path string) {
	if len(name) < 1 {
		v.add(quoteValue(name), path, "Member must have length greater than or equal to 1")
	}
	if len(name) > 64 {
		v.add(quoteValue(name), path, "Member must have length less than or equal to 64")
	}
	if !validStreamName(name) {
		v.add(quoteValue(name), path, "Member must satisfy regular expression pattern: "+namePatternString)
	}
}

// validStreamName reports whether s matches [a-zA-Z0-9_.-]+.
func validStreamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// appendErrorBody appends {"__type":"...","message":"..."}.
func appendErrorBody(b []byte, e *apiError) []byte {
	b = append(b, `{"__type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.Message)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; each byte of invalid UTF-8
// becomes U+FFFD, as with encoding/json.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x80 {
			i++
			continue
		}
		if c < 0x80 {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
