package prefix

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// randomLen is the length of !{firehose:random-string}.
const randomLen = 11

// ErrPrefixTooLong is wrapped by the errors of evaluations longer than
// MaxEvaluatedLength.
var ErrPrefixTooLong = errors.New("evaluated prefix longer than 512 characters")

// ErrMissingKey is wrapped by the errors of evaluations that need a
// partition key the values do not have.
var ErrMissingKey = errors.New("missing partition key")

// Values are what one object's prefix is evaluated with.
type Values struct {
	// Time is the approximate arrival time of the oldest record of the
	// object; it is converted to the Spec's time zone.
	Time time.Time
	// Keys are the partition keys, by full expression name
	// ("partitionKeyFromQuery:customer_id").
	Keys map[string]string
	// Seed identifies the object (see ObjectSeed); the n-th
	// !{firehose:random-string} is derived from it and n.
	Seed string
}

// Key evaluates the Prefix (with the default time path appended when it
// has no timestamp expression).
func (s *Spec) Key(v Values) (string, error) {
	return s.eval(s.prefix, "", v)
}

// ErrorKey evaluates the ErrorOutputPrefix for records of outputType
// (processing-failed, partitioning-failed, ...). Without expressions it is
// <ErrorOutputPrefix or Prefix><outputType>/yyyy/MM/dd/HH/.
func (s *Spec) ErrorKey(outputType string, v Values) (string, error) {
	if outputType == "" {
		return "", fmt.Errorf("evaluate error prefix: empty error output type")
	}
	return s.eval(s.errPrefix, outputType, v)
}

func (s *Spec) eval(segs []segment, outputType string, v Values) (string, error) {
	t := v.Time.In(s.loc)
	b := make([]byte, 0, 128)
	random := 0
	for _, sg := range segs {
		switch sg.kind {
		case segLiteral:
			b = append(b, sg.text...)
		case segTime:
			b = sg.layout.appendTime(b, t)
		case segRandom:
			b = appendRandom(b, v.Seed, random)
			random++
		case segErrorType:
			b = append(b, outputType...)
		case segKey:
			val, ok := v.Keys[sg.text]
			if !ok {
				return "", fmt.Errorf("evaluate prefix: !{%s}: %w", sg.text, ErrMissingKey)
			}
			b = append(b, val...)
		}
		if len(b) > MaxEvaluatedLength {
			return "", fmt.Errorf("evaluate prefix: %q…: %w", b[:64], ErrPrefixTooLong)
		}
	}
	return string(b), nil
}

// appendRandom appends the n-th random string of seed: 11 lowercase hex
// characters of SHA-256(seed, n). Deterministic on purpose (see the package
// documentation).
func appendRandom(b []byte, seed string, n int) []byte {
	h := sha256.New()
	h.Write([]byte("sluice/prefix/random-string\x00"))
	h.Write([]byte(seed))
	var nb [8]byte
	binary.BigEndian.PutUint64(nb[:], uint64(n))
	h.Write(nb[:])
	var sum [sha256.Size]byte
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], h.Sum(sum[:0]))
	return append(b, hx[:randomLen]...)
}

// ObjectSeed is the identity of one object for random strings and UUIDs:
// the stream, the kind of object ("data", "dead-letters/<type>"), the
// batch identity and the partition (Partition.ID, "" without partition
// keys).
func ObjectSeed(stream, kind string, id pipeline.BatchID, partition string) string {
	return stream + "\x00" + kind + "\x00" + id.String() + "\x00" + partition
}

// ObjectUUID derives a UUID-shaped name (version 8, RFC 9562 "custom")
// from an object seed, so a redelivered batch overwrites its own objects
// and two partitions of one batch never collide.
func ObjectUUID(seed string) string {
	h := sha256.Sum256([]byte("sluice/prefix/uuid\x00" + seed))
	u := h[:16]
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:16])
	return string(s[:])
}

// ObjectName is Firehose's object name suffix:
// <stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>, the time (the
// oldest record's arrival) in the Spec's time zone.
func (s *Spec) ObjectName(stream string, oldest time.Time, uuid string) string {
	return stream + "-" + StreamVersion + "-" + oldest.In(s.loc).Format("2006-01-02-15-04-05") + "-" + uuid + s.ext
}

// Ext returns the extension of object names.
func (s *Spec) Ext() string { return s.ext }

// DeadLetterKey is the key of the dead letters of type outputType of batch
// id whose oldest record arrived at oldest: the evaluated error output
// prefix (<error_output_prefix><output-type>/yyyy/MM/dd/HH/ when plain) and
// <stream>-1-<time>-<uuid>, without extension (dead letters are
// uncompressed JSON lines). It derives from the batch identity, so writing
// a batch's dead letters again replaces them.
func (s *Spec) DeadLetterKey(stream, outputType string, oldest time.Time, id pipeline.BatchID) (string, error) {
	seed := ObjectSeed(stream, "dead-letters/"+outputType, id, "")
	dir, err := s.ErrorKey(outputType, Values{Time: oldest, Seed: seed})
	if err != nil {
		return "", err
	}
	return dir + strings.TrimSuffix(s.ObjectName(stream, oldest, ObjectUUID(seed)), s.Ext()), nil
}
