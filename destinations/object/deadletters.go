package object

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// ErrNotDeadLetters is wrapped by the errors of DeadLetters.Each for an
// object whose first line is not a Firehose error record (a data or
// backup object under the same prefix).
var ErrNotDeadLetters = errors.New("not a dead-letter object")

// DeadLetterObject is one object of dead letters in an error output.
type DeadLetterObject struct {
	Key string
	// OutputType is the error output type the key names
	// (processing-failed, delivery-failed...).
	OutputType string
	Size       int64
}

// DeadLetterRecord is one error record of a dead-letter object.
type DeadLetterRecord struct {
	ErrorRecord
	// Data is RawData decoded: the record as it was put (or as the
	// processor that failed it received it).
	Data []byte
	// Fields are the record's other members (lambdaArn, esDocumentId...),
	// as JSON.
	Fields map[string]json.RawMessage
	// Line is the record's line in its object, from 1.
	Line int
}

// DeadLetters reads a stream's dead letters from an error output: the
// objects a Writer of the same Config wrote with WriteDeadLetters. It only
// reads.
type DeadLetters struct {
	store  Reader
	stream string
	root   string // the literal start of the error prefix: where to list
	keyRE  *regexp.Regexp
	where  string
}

// NewDeadLetters returns the reader of stream's dead letters in store,
// whose error output prefix is cfg's. where names the store in messages
// ("s3://bucket", a directory). The store is closed by Close.
func NewDeadLetters(cfg *Config, store Reader, stream, where string) (*DeadLetters, error) {
	if err := CheckStreamName(stream); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	re, root := cfg.spec.DeadLetterPattern(stream)
	return &DeadLetters{store: store, stream: stream, root: root, keyRE: re, where: where}, nil
}

// Stream is the stream whose dead letters are read.
func (d *DeadLetters) Stream() string { return d.stream }

// Where names the store and the prefix listed, for messages.
func (d *DeadLetters) Where() string {
	return strings.TrimSuffix(d.where, "/") + "/" + d.root
}

// Close closes the store.
func (d *DeadLetters) Close(ctx context.Context) error { return d.store.Close(ctx) }

// Candidates lists the objects under the literal start of the error
// prefix whose keys have the shape of the stream's dead-letter keys,
// sorted by key, without reading them: a data or backup object of the
// same shape under the same prefix is only told apart by its content
// (List, Each).
func (d *DeadLetters) Candidates(ctx context.Context) ([]DeadLetterObject, error) {
	infos, err := d.store.List(ctx, d.root)
	if err != nil {
		return nil, fmt.Errorf("listing dead letters of %s under %s: %w", d.stream, d.Where(), err)
	}
	var out []DeadLetterObject
	for _, in := range infos {
		m := d.keyRE.FindStringSubmatch(in.Key)
		if m == nil {
			continue
		}
		out = append(out, DeadLetterObject{Key: in.Key, OutputType: m[1], Size: in.Size})
	}
	return out, nil
}

// List returns the stream's dead-letter objects, sorted by key: the
// candidates whose first line is a Firehose error record (with an
// errorCode and a rawData member). It reads the first line of each.
func (d *DeadLetters) List(ctx context.Context) ([]DeadLetterObject, error) {
	cands, err := d.Candidates(ctx)
	if err != nil {
		return nil, err
	}
	out := cands[:0]
	for _, c := range cands {
		ok, err := d.isDeadLetters(ctx, c.Key)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// errStop ends a read after the first line.
var errStop = errors.New("stop")

func (d *DeadLetters) isDeadLetters(ctx context.Context, key string) (bool, error) {
	err := d.Each(ctx, key, func(DeadLetterRecord) error { return errStop })
	switch {
	case err == nil, errors.Is(err, errStop):
		return true, nil
	case errors.Is(err, ErrNotDeadLetters):
		return false, nil
	}
	return false, err
}

// Each reads the error records of the object key in order and calls fn
// with each; an error from fn ends the read and is returned. An object
// whose first line is not an error record gives an error wrapping
// ErrNotDeadLetters before fn is called; a later line that is not one is
// an error naming the key and the line. Unknown members are kept in
// Fields. Blank lines are skipped.
func (d *DeadLetters) Each(ctx context.Context, key string, fn func(DeadLetterRecord) error) error {
	rc, err := d.store.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("reading dead letters %s: %w", key, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	first := true
	for line := 1; ; line++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading dead letters %s: %w", key, err)
		}
		b, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("reading dead letters %s: %w", key, rerr)
		}
		if b = bytes.TrimSpace(b); len(b) > 0 {
			rec, perr := ParseErrorRecord(b)
			if perr != nil {
				if first {
					return fmt.Errorf("%s: %w: line 1: %w", key, ErrNotDeadLetters, perr)
				}
				return fmt.Errorf("dead letters %s line %d: %w", key, line, perr)
			}
			first = false
			rec.Line = line
			if err := fn(rec); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			if first {
				return fmt.Errorf("%s: %w: empty", key, ErrNotDeadLetters)
			}
			return nil
		}
	}
}

// ParseErrorRecord decodes one line of a dead-letter object: a JSON object
// with Firehose's error-record members, of which errorCode (not empty)
// and rawData (base64) are required; other members go to Fields.
func ParseErrorRecord(line []byte) (DeadLetterRecord, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(line, &members); err != nil {
		return DeadLetterRecord{}, fmt.Errorf("not a JSON object: %w", err)
	}
	var r DeadLetterRecord
	raw, ok := members["rawData"]
	if !ok {
		return r, errors.New("no rawData member")
	}
	fields := []struct {
		name string
		into any
	}{
		{"attemptsMade", &r.AttemptsMade},
		{"arrivalTimestamp", &r.ArrivalTimestamp},
		{"errorCode", &r.ErrorCode},
		{"errorMessage", &r.ErrorMessage},
		{"attemptEndingTimestamp", &r.AttemptEndingTimestamp},
		{"rawData", &r.RawData},
	}
	for _, f := range fields {
		v, ok := members[f.name]
		if !ok {
			continue
		}
		delete(members, f.name)
		if string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, f.into); err != nil {
			return DeadLetterRecord{}, fmt.Errorf("member %s: %w", f.name, err)
		}
	}
	if r.ErrorCode == "" {
		return DeadLetterRecord{}, errors.New("no errorCode")
	}
	if string(raw) == "null" {
		return DeadLetterRecord{}, errors.New("rawData is null")
	}
	data, err := base64.StdEncoding.DecodeString(r.RawData)
	if err != nil {
		return DeadLetterRecord{}, fmt.Errorf("rawData: %w", err)
	}
	r.Data = data
	if len(members) > 0 {
		r.Fields = members
	}
	return r, nil
}
