package config

import (
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decodeStreams decodes the streams mapping, in the order of the file, once
// the top-level buffer block is known: each stream starts from
// DefaultStream and the top-level buffer block, then its own keys.
func (d *decoder) decodeStreams(w *fileConfig) {
	n := resolve(w.Streams)
	if n == nil || d.skip[n] || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "streams", "expected a mapping from stream name to stream, got %s", describe(n))
		return
	}
	pairs := d.pairs(n, "streams")
	w.Config.Streams = make([]Stream, len(pairs))
	for i, p := range pairs {
		s := &w.Config.Streams[i]
		*s = DefaultStream
		s.Buffer = w.Config.Buffer
		s.Encryption = StreamEncryption{Enabled: w.Config.Encryption.Enabled, KeyID: w.Config.Encryption.KeyID}
		s.Name = p.key.Value
		s.Pos = NodePos(d.file, p.key)
		path := "streams." + s.Name
		if !validStreamName(s.Name) {
			d.errorf(p.key, "streams", "invalid stream name %q: use 1 to 64 characters of a-z, A-Z, 0-9, '_', '.' and '-'", s.Name)
		}
		val := resolve(p.val)
		if isNull(val) {
			d.errorf(p.key, path, "missing key \"destination\"")
			continue
		}
		d.decodeStruct(val, reflect.ValueOf(s).Elem(), path, nil)
		d.completeStreamEncryption(s)
		if tags := resolve(lookup(val, "tags")); tags != nil && tags.Kind == yaml.MappingNode {
			d.validateTags(tags, path+".tags")
		}
		if dn := resolve(lookup(val, "destination")); s.Destination.IsZero() && val.Kind == yaml.MappingNode && (dn == nil || isNull(dn)) {
			d.errorf(p.key, path, "missing key \"destination\"")
		}
	}
}

func validStreamName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// validateTags checks Firehose's tag rules: at most 50 tags, keys of 1 to
// 128 characters not starting with "aws:", values of at most 256.
func (d *decoder) validateTags(n *yaml.Node, path string) {
	if len(n.Content)/2 > 50 {
		d.errorf(n, path, "at most 50 tags are allowed, got %d", len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		key := k.Value
		switch {
		case utf8.RuneCountInString(key) < 1 || utf8.RuneCountInString(key) > 128:
			d.errorf(k, path, "tag key %q must be 1 to 128 characters long", key)
		case strings.HasPrefix(strings.ToLower(key), "aws:"):
			d.errorf(k, path, "tag key %q must not start with \"aws:\" (reserved)", key)
		case !validTagText(key):
			d.errorf(k, path, "tag key %q may only contain letters, digits, spaces and _ . : / = + - @", key)
		}
		if v.Kind == yaml.ScalarNode && !d.skip[v] {
			if utf8.RuneCountInString(v.Value) > 256 {
				d.errorf(v, join(path, key), "tag value must be at most 256 characters long")
			} else if !validTagText(v.Value) {
				d.errorf(v, join(path, key), "tag value may only contain letters, digits, spaces and _ . : / = + - @")
			}
		}
	}
}

func validTagText(s string) bool {
	for _, c := range s {
		if !unicode.IsLetter(c) && !unicode.IsNumber(c) && !unicode.Is(unicode.Zs, c) && !strings.ContainsRune("_.:/=+-@", c) {
			return false
		}
	}
	return true
}

// at returns where the value ptr points to was written, or fallback when it
// was not written (a default).
func (d *decoder) at(ptr any, fallback Pos) Pos {
	v := reflect.ValueOf(ptr)
	if p, ok := d.pos[posKey{v.Pointer(), v.Type().Elem()}]; ok {
		return p
	}
	return fallback
}

func (d *decoder) written(ptr any) bool {
	v := reflect.ValueOf(ptr)
	_, ok := d.pos[posKey{v.Pointer(), v.Type().Elem()}]
	return ok
}

// fail reports a problem with the value ptr points to.
func (d *decoder) fail(ptr any, fallback Pos, path, format string, args ...any) {
	d.errs = append(d.errs, d.at(ptr, fallback).Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

// validate checks values and combinations once everything is decoded, and
// completes derived values (a memory buffer's durability).
func (d *decoder) validate(c *Config) {
	top := Pos{File: d.file, Line: 1, Column: 1}
	if err := checkAddr(c.Listen); err != nil {
		d.fail(&c.Listen, top, "listen", "%v", err)
	}
	if c.AdminListen != "" {
		if err := checkAddr(c.AdminListen); err != nil {
			d.fail(&c.AdminListen, top, "admin_listen", "%v", err)
		} else if c.AdminListen == c.Listen {
			d.fail(&c.AdminListen, top, "admin_listen", "must differ from listen (leave it empty to serve /metrics and /healthz on listen)")
		}
	}
	if c.DataDir == "" {
		d.fail(&c.DataDir, top, "data_dir", "must not be empty")
	}
	if !validRegion(c.Region) {
		d.fail(&c.Region, top, "region", "invalid region %q (e.g. \"us-east-1\")", c.Region)
	}
	if len(c.AccountID) != 12 || strings.Trim(c.AccountID, "0123456789") != "" {
		d.fail(&c.AccountID, top, "account_id", "must be 12 digits, got %q", c.AccountID)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		d.fail(&c.Log.Level, top, "log.level", "invalid level %q (want debug, info, warn or error)", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "text", "json") {
		d.fail(&c.Log.Format, top, "log.format", "invalid format %q (want text or json)", c.Log.Format)
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < 32*MiB {
		d.fail(&c.MemoryLimit, top, "memory_limit", "must be at least 32MiB (or 0 for none), got %s", c.MemoryLimit)
	}
	if c.ShutdownTimeout <= 0 {
		d.fail(&c.ShutdownTimeout, top, "shutdown_timeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	d.validateBuffer(&c.Buffer, top, "buffer", false)
	d.validateAuth(&c.Auth, top)
	d.validateAudit(&c.Audit, top)
	d.validateTLS(&c.TLS, top, "tls")
	d.validateTLS(&c.AdminTLS, top, "admin_tls")
	if c.AdminTLS.CertFile != "" && c.AdminListen == "" {
		d.fail(&c.AdminTLS.CertFile, top, "admin_tls", "needs admin_listen (without it /metrics is served on listen, with tls)")
	}
	d.validateEncryption(&c.Encryption, top)
	for i := range c.Streams {
		d.validateStream(&c.Streams[i])
		d.validateStreamEncryption(&c.Streams[i], c.Encryption.Keys)
	}
	c.Buffer.normalize()
}

func (d *decoder) validateTLS(t *TLS, top Pos, path string) {
	switch {
	case t.CertFile == "" && t.KeyFile != "":
		d.fail(&t.KeyFile, top, path+".cert_file", "is required with key_file")
	case t.CertFile != "" && t.KeyFile == "":
		d.fail(&t.CertFile, top, path+".key_file", "is required with cert_file")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		d.fail(&t.ClientCAFile, top, path+".client_ca_file", "needs cert_file and key_file: client certificates are verified over TLS")
	}
}

func (b *Buffer) normalize() {
	if b.Type == BufferMemory {
		b.Durability = DurabilityMemory
	}
}

// validateBuffer checks a buffer block. For a stream's block (inherited),
// only values written in that block are checked on their own (the others
// were checked in the top-level block); combinations are checked when one
// of their values was written there.
func (d *decoder) validateBuffer(b *Buffer, fallback Pos, path string, inherited bool) {
	check := func(ptr any) bool { return !inherited || d.written(ptr) }
	if check(&b.Type) && !oneOf(b.Type, BufferDisk, BufferMemory) {
		d.fail(&b.Type, fallback, path+".type", "invalid type %q (want disk or memory)", b.Type)
	}
	switch {
	case check(&b.Durability) && !oneOf(b.Durability, DurabilityFsync, DurabilityOS):
		d.fail(&b.Durability, fallback, path+".durability", "invalid durability %q (want fsync or os)", b.Durability)
	case b.Type == BufferMemory && d.written(&b.Durability):
		d.fail(&b.Durability, fallback, path+".durability", "cannot be %q with type memory: a memory buffer is lost on any crash (remove durability)", b.Durability)
	}
	maxOK := b.MaxBytes >= MiB
	if check(&b.MaxBytes) && !maxOK {
		d.fail(&b.MaxBytes, fallback, path+".max_bytes", "must be at least 1MiB, got %s", b.MaxBytes)
	}
	segOK := b.SegmentBytes >= MiB && b.SegmentBytes <= GiB
	if check(&b.SegmentBytes) && !segOK {
		d.fail(&b.SegmentBytes, fallback, path+".segment_bytes", "must be between 1MiB and 1GiB, got %s", b.SegmentBytes)
	}
	if maxOK && segOK && b.Type == BufferDisk && b.SegmentBytes > b.MaxBytes &&
		(check(&b.SegmentBytes) || check(&b.MaxBytes) || check(&b.Type)) {
		d.fail(&b.SegmentBytes, d.at(&b.MaxBytes, fallback), path+".segment_bytes", "must not exceed max_bytes (%s), got %s", b.MaxBytes, b.SegmentBytes)
	}
}

func (d *decoder) validateStream(s *Stream) {
	path := "streams." + s.Name
	switch s.Type {
	case StreamDirectPut:
		if d.written(&s.Source) {
			d.fail(&s.Source, s.Pos, path+".source", "a stream of type DirectPut takes records through the Firehose API: a source block needs type: %s", StreamKinesisStreamAsSource)
		}
	case StreamKinesisStreamAsSource:
		if !d.written(&s.Source) {
			d.fail(&s.Type, s.Pos, path+".source", "a stream of type %s needs a source block (type: kinesis) naming the Kinesis stream to read", StreamKinesisStreamAsSource)
		}
		if s.Buffer.Type == BufferMemory {
			d.fail(&s.Buffer.Type, s.Pos, path+".buffer.type", "must be disk for a Kinesis source: its checkpoints are kept with the records in the disk buffer")
		}
	default:
		d.fail(&s.Type, s.Pos, path+".type", "invalid type %q (want %s or %s)", s.Type, StreamDirectPut, StreamKinesisStreamAsSource)
	}
	if q := &s.Quota; *q != (Quota{}) {
		if s.Type == StreamKinesisStreamAsSource {
			d.fail(q, s.Pos, path+".quota", "applies to direct puts only: a KinesisStreamAsSource stream takes none")
		}
		if q.RecordsPerSecond < 0 {
			d.fail(&q.RecordsPerSecond, s.Pos, path+".quota.records_per_second", "must not be negative, got %d", q.RecordsPerSecond)
		}
		if q.RequestsPerSecond < 0 {
			d.fail(&q.RequestsPerSecond, s.Pos, path+".quota.requests_per_second", "must not be negative, got %d", q.RequestsPerSecond)
		}
		if q.BytesPerSecond != 0 && q.BytesPerSecond < MiB {
			d.fail(&q.BytesPerSecond, s.Pos, path+".quota.bytes_per_second", "must be at least 1MiB (a record may hold 1000 KiB), or 0 for no limit, got %s", q.BytesPerSecond)
		}
	}
	if s.MaxInFlight < 0 || s.MaxInFlight > MaxInFlight {
		d.fail(&s.MaxInFlight, s.Pos, path+".max_in_flight", "must be between 1 and %d, or 0 for the destination's default, got %d", MaxInFlight, s.MaxInFlight)
	}
	if s.Buffering.Size < 1 || s.Buffering.Size > 128 {
		d.fail(&s.Buffering.Size, s.Pos, path+".buffering.size", "must be between 1 and 128 (MiB), got %d", s.Buffering.Size)
	}
	if s.Buffering.Interval < 0 || s.Buffering.Interval > 900 {
		d.fail(&s.Buffering.Interval, s.Pos, path+".buffering.interval", "must be between 0 and 900 (seconds), got %d", s.Buffering.Interval)
	}
	s.Retry.Written = d.written(&s.Retry.Duration)
	s.Retry.Pos = d.at(&s.Retry.Duration, s.Pos)
	if s.Retry.Duration < 0 || s.Retry.Duration > 86400 {
		d.fail(&s.Retry.Duration, s.Pos, path+".retry.duration", "must be between 0 and 86400 (seconds), got %d", s.Retry.Duration)
	}
	d.validateBuffer(&s.Buffer, s.Pos, path+".buffer", true)
	s.Buffer.normalize()
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port, e.g. \"127.0.0.1:4573\"", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port %q in %q", port, addr)
	}
	return nil
}

func validRegion(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}
