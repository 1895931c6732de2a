package wasm

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// Defaults and limits of Options.
const (
	// DefaultBatchRecords is the default maximum number of records per
	// call.
	DefaultBatchRecords = 10000
	// DefaultBatchBytes is the default maximum payload per call: 1 MiB,
	// Firehose's default Lambda BufferSizeInMBs.
	DefaultBatchBytes = 1 << 20
	// MaxBatchBytes bounds batch_bytes (Firehose: a 6 MB Lambda payload;
	// Sluice allows more since nothing crosses a network).
	MaxBatchBytes = 256 << 20
	// DefaultTimeout bounds one call (Firehose allows a Lambda 5 minutes;
	// a WebAssembly call on 1 MiB takes milliseconds).
	DefaultTimeout = 10 * time.Second
	// DefaultMemoryLimit is the default bound on an instance's linear
	// memory.
	DefaultMemoryLimit ByteSize = 128 << 20
	// MaxMemoryLimit is the largest memory a 32-bit module can address.
	MaxMemoryLimit ByteSize = 4 << 30
	// DefaultRetries is Firehose's default NumberOfRetries.
	DefaultRetries = 3
	// MaxRetries bounds retries (Firehose: 0–300).
	MaxRetries = 300
	// DefaultRegion fills the region of the delivery stream ARN and the
	// region field passed to the guest.
	DefaultRegion = "us-east-1"
	// CacheDirName is the compilation cache's directory under the data
	// directory.
	CacheDirName = "wasm-cache"
	pageSize     = 65536
)

// ByteSize is a size in bytes written in YAML as an integer or as a number
// with a unit: "64MiB", "512KiB", "1GiB", "100MB", "1000kB", "65536B".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// UnmarshalText parses a size such as "64MiB".
func (s *ByteSize) UnmarshalText(text []byte) error {
	str := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(str, u.suffix); ok {
			str, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size (write e.g. 64MiB, 512KiB or a number of bytes)", text)
	}
	*s = ByteSize(n * mult)
	return nil
}

// String renders the size in the largest binary unit that divides it.
func (s ByteSize) String() string {
	switch {
	case s != 0 && s%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", s>>30)
	case s != 0 && s%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", s>>20)
	case s != 0 && s%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", s>>10)
	}
	return fmt.Sprintf("%dB", int64(s))
}

// Options configure a wasm processor. The YAML keys are the processor
// block's keys in a stream's configuration.
type Options struct {
	// Module is the path of the .wasm file (required): a WASI reactor
	// implementing ABI.md.
	Module string `yaml:"module"`
	// BatchRecords is the maximum number of records per call; a batch is
	// cut into calls of at most BatchRecords records and BatchBytes
	// payload bytes (a single larger record gets a call of its own).
	// Default DefaultBatchRecords.
	BatchRecords int `yaml:"batch_records"`
	// BatchBytes is the maximum payload bytes per call. Default
	// DefaultBatchBytes.
	BatchBytes ByteSize `yaml:"batch_bytes"`
	// Timeout bounds one call; a call running longer is interrupted and
	// fails with CodeFunctionTimeout. Default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// MemoryLimit bounds each instance's linear memory (rounded down to
	// 64 KiB pages). Default DefaultMemoryLimit.
	MemoryLimit ByteSize `yaml:"memory_limit"`
	// Instances is the number of instances, hence of concurrent calls.
	// Default runtime.GOMAXPROCS(0).
	Instances int `yaml:"instances"`
	// Retries is the number of times a failed call is retried
	// (Firehose NumberOfRetries). Default DefaultRetries; 0 is no retry.
	// A nil pointer means the default.
	Retries *int `yaml:"retries"`
	// Env is the guest's whole environment (WASI environ).
	Env map[string]string `yaml:"env"`
	// Config is passed to the guest's sluice_init: a string verbatim,
	// any other value JSON-encoded (ABI.md §5).
	Config any `yaml:"config"`
	// AllowFS lists host directories mounted read-only, at the same path,
	// in the guest. Default none: the guest sees no files.
	AllowFS []string `yaml:"allow_fs"`
	// CacheDir holds compiled modules so that restarts do not recompile.
	// Default <data_dir>/wasm-cache; "-" disables the disk cache.
	CacheDir string `yaml:"cache_dir"`
	// Region fills the delivery stream ARN given to the guest. Default:
	// the configuration's top-level region (pipeline.Deps.Region), else
	// DefaultRegion.
	Region string `yaml:"region"`
}

// DefaultOptions returns the defaults a configuration block is decoded
// onto.
func DefaultOptions() Options {
	r := DefaultRetries
	return Options{
		BatchRecords: DefaultBatchRecords,
		BatchBytes:   DefaultBatchBytes,
		Timeout:      DefaultTimeout,
		MemoryLimit:  DefaultMemoryLimit,
		Instances:    runtime.GOMAXPROCS(0),
		Retries:      &r,
	}
}

// Validate reports every problem with the options at once (Compile
// without its result).
func (o Options) Validate() error {
	_, err := o.Compile()
	return err
}

// Compiled is options that passed Compile, with defaults applied, in the
// form New uses.
type Compiled struct{ s settings }

// settings are validated options with defaults applied.
type settings struct {
	module       string
	batchRecords int
	batchBytes   int
	timeout      time.Duration
	memoryPages  uint32
	instances    int
	retries      int
	env          []string // sorted key=value pairs
	config       []byte
	allowFS      []string
	// cacheDir is the compilation cache's directory; "" keeps compiled
	// code in memory only. In Compiled it is as configured ("" for the
	// default, "-" for none); New resolves it with the data directory.
	cacheDir string
	// region is as configured in Compiled ("" for the default); New
	// resolves it with the configuration's region.
	region string
}

// Compile validates the options, reporting every problem at once, each a
// *pipeline.OptionError at its key, and returns them compiled for New. It
// checks that the module file and the allow_fs directories exist; it does
// not compile the module (New does: compiling is the processor's work, not
// its configuration's).
func (o Options) Compile() (Compiled, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	s := settings{
		module:       o.Module,
		batchRecords: o.BatchRecords,
		batchBytes:   int(o.BatchBytes),
		timeout:      o.Timeout,
		instances:    o.Instances,
		retries:      DefaultRetries,
		region:       o.Region,
		allowFS:      o.AllowFS,
		cacheDir:     o.CacheDir,
	}
	if o.Module == "" {
		bad("module", "required (the path of a .wasm file)")
	} else if fi, err := os.Stat(o.Module); err != nil {
		bad("module", "%w", err)
	} else if fi.IsDir() {
		bad("module", "%s is a directory", o.Module)
	}
	switch {
	case s.batchRecords == 0:
		s.batchRecords = DefaultBatchRecords
	case s.batchRecords < 0:
		bad("batch_records", "%d is negative", s.batchRecords)
	}
	switch {
	case o.BatchBytes == 0:
		s.batchBytes = DefaultBatchBytes
	case o.BatchBytes < 0 || o.BatchBytes > MaxBatchBytes:
		bad("batch_bytes", "%v is outside 1B–%v", o.BatchBytes, ByteSize(MaxBatchBytes))
	}
	switch {
	case s.timeout == 0:
		s.timeout = DefaultTimeout
	case s.timeout < 0:
		bad("timeout", "%v is negative", s.timeout)
	}
	mem := o.MemoryLimit
	if mem == 0 {
		mem = DefaultMemoryLimit
	}
	if mem < pageSize || mem > MaxMemoryLimit {
		bad("memory_limit", "%v is outside 64KiB–4GiB", mem)
	}
	s.memoryPages = uint32(min(mem, MaxMemoryLimit) / pageSize)
	switch {
	case s.instances == 0:
		s.instances = runtime.GOMAXPROCS(0)
	case s.instances < 0:
		bad("instances", "%d is negative", s.instances)
	}
	if o.Retries != nil {
		s.retries = *o.Retries
		if s.retries < 0 || s.retries > MaxRetries {
			bad("retries", "%d is outside 0–%d", s.retries, MaxRetries)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.Env)) {
		v := o.Env[k]
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			bad("env."+k, "%q: names must be non-empty without '=' or NUL, values without NUL", k)
			continue
		}
		s.env = append(s.env, k+"="+v)
	}
	switch c := o.Config.(type) {
	case nil:
	case string:
		s.config = []byte(c)
	default:
		b, err := json.Marshal(c)
		if err != nil {
			bad("config", "cannot encode as JSON: %w", err)
		}
		s.config = b
	}
	for i, d := range o.AllowFS {
		key := fmt.Sprintf("allow_fs[%d]", i)
		if !filepath.IsAbs(d) {
			bad(key, "%q is not an absolute path", d)
		} else if fi, err := os.Stat(d); err != nil {
			bad(key, "%w", err)
		} else if !fi.IsDir() {
			bad(key, "%s is not a directory", d)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Compiled{}, err
	}
	return Compiled{s: s}, nil
}

// resolve completes compiled settings with what the configuration gives
// every component: the data directory (the default compilation cache) and
// the region (the default region).
func (s settings) resolve(deps pipeline.Deps) settings {
	switch {
	case s.cacheDir == "-":
		s.cacheDir = ""
	case s.cacheDir == "" && deps.DataDir != "":
		s.cacheDir = filepath.Join(deps.DataDir, CacheDirName)
	}
	s.region = cmp.Or(s.region, deps.Region, DefaultRegion)
	return s
}

// Files are the files New reads: the module. A configuration reload
// rebuilds the processor when one of them changes.
func (c Compiled) Files() []string { return []string{c.s.module} }
