// Package config is Sluice's configuration: the YAML schema of the one file
// a deployment is run from, its defaults, and the strict decoder that reads
// it.
//
// Decoding is strict and complete: an unknown key, a value of the wrong
// type, an invalid value or an inconsistent combination is an error naming
// the file, line and column, and every problem in the file is reported at
// once (as Errors). ${NAME} and ${NAME:-default} in scalar values are
// replaced by environment variables after the YAML is parsed, so positions
// stay those of the file and a variable cannot change the document's
// structure; $${ is a literal ${.
//
// The package never imports a component implementation. Destinations,
// processors and error outputs are kept as a Component: the "type" key
// selects the implementation, which decodes its own options from the raw
// node with Component.Decode or DecodeNode, the same strict decoder, and
// whose Validate errors Component.OptionErrors places at the offending
// keys.
//
// Every default is one Default… value below, and docs/configuration.md
// documents every key (a test keeps the two in sync).
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Stream types (Firehose's DeliveryStreamType): DirectPut streams take
// records through the Firehose API, KinesisStreamAsSource streams read a
// Kinesis data stream (their source block).
const (
	StreamDirectPut             = "DirectPut"
	StreamKinesisStreamAsSource = "KinesisStreamAsSource"
)

// MaxInFlight is the most batches of one stream that may be delivered
// concurrently (the max_in_flight key). It is buffer.MaxInflight, which
// config may not import (config imports nothing of the project): the two
// must stay equal.
const MaxInFlight = 64

// Buffer types and durability modes.
const (
	BufferDisk   = "disk"
	BufferMemory = "memory"

	DurabilityFsync  = "fsync"
	DurabilityOS     = "os"
	DurabilityMemory = "memory" // implied by type memory; not written in files
)

// Config is a loaded configuration.
type Config struct {
	// File is the name the configuration was loaded from.
	File string `yaml:"-"`
	// Listen is the address of the Firehose API (and of /metrics and
	// /healthz unless AdminListen is set).
	Listen string `yaml:"listen"`
	// AdminListen, when not empty, is the address /metrics and /healthz
	// move to.
	AdminListen string `yaml:"admin_listen"`
	// DataDir holds the buffers (DataDir/buffer/<stream>) and is the base
	// of relative destination paths.
	DataDir string `yaml:"data_dir"`
	// Region and AccountID are used to synthesise ARNs.
	Region    string `yaml:"region"`
	AccountID string `yaml:"account_id"`
	Log       Log    `yaml:"log"`
	// ShutdownTimeout bounds the drain at shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT): the
	// garbage collector works harder as the heap nears it, instead of
	// letting it reach twice the live data. Zero leaves the runtime's
	// default (or the GOMEMLIMIT environment variable) alone.
	MemoryLimit Size `yaml:"memory_limit"`
	// Buffer is the buffer configuration every stream starts from.
	Buffer Buffer `yaml:"buffer"`
	// Auth is how Firehose API requests are authenticated (see auth.go).
	Auth Auth `yaml:"auth"`
	// TLS, when its files are set, serves the API listener over TLS;
	// AdminTLS the admin listener.
	TLS      TLS `yaml:"tls"`
	AdminTLS TLS `yaml:"admin_tls"`
	// AdminToken, when set, is the bearer token /metrics and
	// /debug/pprof/ require (the probes stay open).
	AdminToken string `yaml:"admin_token"`
	// Audit is the audit log of API calls (see audit.go); off without output.
	Audit Audit `yaml:"audit"`
	// Encryption is encryption at rest (see encryption.go): every
	// stream's default, and the keys.
	Encryption Encryption `yaml:"encryption"`
	// Streams are the delivery streams, in the order of the file.
	Streams []Stream `yaml:"-"`
}

// TLS configures a listener's TLS.
type TLS struct {
	// CertFile and KeyFile are PEM files, reloaded when they change on
	// disk.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires every client to present a
	// certificate signed by one of its CAs (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
}

// Log configures the daemon's logs.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Buffer configures a stream's buffer. In Config it holds the defaults for
// every stream; in Stream the effective values (defaults, then the
// top-level buffer block, then the stream's own block).
type Buffer struct {
	// Type is BufferDisk or BufferMemory.
	Type string `yaml:"type"`
	// Durability is DurabilityFsync or DurabilityOS; in a Stream it is
	// DurabilityMemory when Type is BufferMemory.
	Durability string `yaml:"durability"`
	// MaxBytes is the stream's quota: beyond it producers are told to slow
	// down.
	MaxBytes Size `yaml:"max_bytes"`
	// SegmentBytes is the size of one segment file of a disk buffer.
	SegmentBytes Size `yaml:"segment_bytes"`
	// MinFreeBytes is the free space a disk buffer keeps on its
	// filesystem: appends that would leave less are throttled. 0 disables.
	MinFreeBytes Size `yaml:"min_free_bytes"`
	// AbandonDiskBacklog lets a stream whose buffer is switched from disk
	// to memory start although its disk buffer directory still holds
	// undelivered records: they are left there (reported at start, never
	// deleted). Without it that switch is a validation error.
	AbandonDiskBacklog bool `yaml:"abandon_disk_backlog"`
}

// Stream is one delivery stream.
type Stream struct {
	// Name is the stream's name (the key under streams:).
	Name string `yaml:"-"`
	// Pos is the position of the name in the file.
	Pos Pos `yaml:"-"`
	// Type is StreamDirectPut (producers put records through the
	// Firehose API) or StreamKinesisStreamAsSource (the stream reads the
	// Kinesis data stream its Source names; puts are refused).
	Type      string    `yaml:"type"`
	Buffering Buffering `yaml:"buffering"`
	Retry     Retry     `yaml:"retry"`
	// Buffer is the stream's effective buffer configuration.
	Buffer Buffer `yaml:"buffer"`
	// Encryption is the stream's effective encryption at rest.
	Encryption StreamEncryption  `yaml:"encryption"`
	Tags       map[string]string `yaml:"tags"`
	// MaxInFlight is how many batches of the stream are delivered
	// concurrently: 0 (the default) lets the assembler choose the
	// destination's default, otherwise 1 to MaxInFlight; 1 keeps batches
	// in strict order.
	MaxInFlight int `yaml:"max_in_flight"`
	// Quota is the stream's Direct PUT quota; zero values do not limit.
	Quota Quota `yaml:"quota"`
	// Source is a KinesisStreamAsSource stream's source (type kinesis),
	// decoded by its implementation; zero for a DirectPut stream.
	Source Component `yaml:"source"`
	// Destination is where the stream delivers (required).
	Destination Component `yaml:"destination"`
	// ErrorOutput is the stream's error output (Firehose's S3 backup),
	// where dead letters (and, in mode AllData, a copy of every batch)
	// are written: its type selects the store (file or s3), the other keys
	// are that store's options plus mode, read by the assembler. Zero when
	// absent.
	ErrorOutput Component `yaml:"error_output"`
	// Processors transform records in order before delivery.
	Processors []Component `yaml:"processors"`
}

// Quota is a stream's Direct PUT quota, as Firehose applies it per
// stream: records, requests and bytes per second (0: no limit).
type Quota struct {
	RecordsPerSecond  int  `yaml:"records_per_second"`
	RequestsPerSecond int  `yaml:"requests_per_second"`
	BytesPerSecond    Size `yaml:"bytes_per_second"`
}

// Buffering is Firehose's BufferingHints: a batch is delivered when it
// reaches Size MiB or when its oldest record is Interval seconds old,
// whichever comes first.
type Buffering struct {
	Size     int `yaml:"size"`     // MiB, 1..128
	Interval int `yaml:"interval"` // seconds, 0..900
}

// Bytes returns the size threshold in bytes.
func (b Buffering) Bytes() int64 { return int64(b.Size) * int64(MiB) }

// Age returns the interval threshold as a duration.
func (b Buffering) Age() time.Duration { return time.Duration(b.Interval) * time.Second }

// Retry is how long a failing delivery is retried before its records are
// dead-lettered.
type Retry struct {
	Duration int `yaml:"duration"` // seconds, 0..86400
	// Written reports whether the file sets duration; without it the
	// destination's default applies where it has one (Redshift: 3600 s,
	// HTTP endpoint: 300 s, as Firehose), else DefaultRetry.
	Written bool `yaml:"-"`
	// Pos is where duration is written (the stream's name when it is not).
	Pos Pos `yaml:"-"`
}

// Budget returns the retry duration as a duration.
func (r Retry) Budget() time.Duration { return time.Duration(r.Duration) * time.Second }

// Component is a pluggable part of a stream (a destination, a processor, a
// source) kept undecoded: Type selects the implementation, Node holds the
// mapping with its options (including the type key), which the
// implementation decodes with Decode.
type Component struct {
	Type string
	Node *yaml.Node
	// Pos is the position of the component's mapping.
	Pos Pos
	// Path names the component in messages, e.g.
	// "streams.orders.destination".
	Path string
}

// IsZero reports whether the component was not configured.
func (c Component) IsZero() bool { return c.Node == nil }

// Decode decodes the component's options strictly into out (see
// DecodeNode), reporting errors with the file name and the component's
// path. The type key is ignored.
func (c Component) Decode(out any) error {
	d := &decoder{file: c.Pos.File}
	return d.decodeRoot(c.Node, out, c.Path, true)
}

// Errorf returns an Error at the component, for problems found while
// building it.
func (c Component) Errorf(format string, args ...any) Error {
	e := c.Pos.Errorf(format, args...)
	if c.Path != "" {
		e.Msg = c.Path + ": " + e.Msg
	}
	return e
}

// KeyErrorf returns an Error at the value of the component's option key
// (or at the component when the key is absent), for an option value the
// component rejects.
func (c Component) KeyErrorf(key, format string, args ...any) Error {
	p := c.Pos
	if n := lookup(c.Node, key); n != nil {
		p = NodePos(c.Pos.File, n)
	}
	e := p.Errorf(format, args...)
	e.Msg = join(c.Path, key) + ": " + e.Msg
	return e
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Stream returns the stream named name.
func (c *Config) Stream(name string) (*Stream, bool) {
	for i := range c.Streams {
		if c.Streams[i].Name == name {
			return &c.Streams[i], true
		}
	}
	return nil, false
}

// BufferDir returns the directory of a stream's buffer.
func (c *Config) BufferDir(stream string) string {
	return filepath.Join(c.DataDir, "buffer", stream)
}

// Load reads, expands, decodes, completes with defaults and validates the
// configuration file at path, with the process environment. A problem with
// the contents is returned as Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is Load on data already read; name is used in error positions and
// getenv looks environment variables up (os.LookupEnv in Load). With
// Errors, the Config returned holds what could be decoded, for reporting
// only.
func Parse(name string, data []byte, getenv func(string) (string, bool)) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{syntaxError(name, err)}
	}
	w := &fileConfig{Config: DefaultConfig}
	w.File = name
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if doc.Kind == 0 || (root.Kind == yaml.ScalarNode && isNull(root)) {
		// An empty file: every default, no streams.
		return &w.Config, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, Errors{NodePos(name, root).Errorf("expected a mapping at the top level, got %s", describe(root))}
	}
	d := &decoder{file: name, pos: map[posKey]Pos{}, skip: map[*yaml.Node]bool{}}
	d.errs, d.skip = expandEnv(name, data, root, getenv)
	// Top-level keys starting with "x-" are ignored: they hold anchors
	// (&name) to reuse elsewhere with aliases (*name).
	d.decodeStruct(root, reflect.ValueOf(w).Elem(), "", func(key string) bool { return strings.HasPrefix(key, "x-") })
	d.completeEncryption(&w.Config.Encryption)
	d.decodeStreams(w)
	d.validate(&w.Config)
	if err := d.errs.Err(); err != nil {
		// What did decode is returned too, so that `sluice validate` can go
		// on checking the components and report every error at once. It
		// must not be run.
		return &w.Config, err
	}
	return &w.Config, nil
}

// fileConfig is the top level of the file: Config plus the raw streams
// mapping, decoded once the top-level buffer block is known.
type fileConfig struct {
	Config  `yaml:",inline"`
	Streams *yaml.Node `yaml:"streams"`
}

// syntaxError turns a yaml.v3 syntax error ("yaml: line N: msg") into an
// Error.
func syntaxError(name string, err error) Error {
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, "yaml: line ")
	if ok {
		num, text, found := strings.Cut(rest, ": ")
		if line, convErr := strconv.Atoi(num); found && convErr == nil {
			return Error{File: name, Line: line, Msg: "invalid YAML: " + text}
		}
	}
	return Error{File: name, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}
