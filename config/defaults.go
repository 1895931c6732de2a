package config

import "time"

// The defaults, one value per block. docs/configuration.md documents them;
// a test checks that it names every key.

// DefaultLog is the default log block.
var DefaultLog = Log{
	Level:  "info",
	Format: "text",
}

// DefaultBuffer is the default buffer block: a disk buffer that fsyncs
// before acknowledging, with a 1 GiB quota per stream in 64 MiB segments.
var DefaultBuffer = Buffer{
	Type:         BufferDisk,
	Durability:   DurabilityFsync,
	MaxBytes:     1 * GiB,
	SegmentBytes: 64 * MiB,
	MinFreeBytes: 64 * MiB,
}

// DefaultBuffering is Firehose's default BufferingHints for S3: 5 MiB or
// 300 seconds, whichever comes first.
var DefaultBuffering = Buffering{
	Size:     5,
	Interval: 300,
}

// DefaultRetry retries a failing delivery for 24 hours, as Firehose does for
// object stores, before dead-lettering.
var DefaultRetry = Retry{
	Duration: 86400,
}

// DefaultStream is what every stream starts from (its Buffer comes from the
// top-level buffer block). MaxInFlight 0 lets the assembler pick the
// destination's default concurrency.
var DefaultStream = Stream{
	Type:        StreamDirectPut,
	Buffering:   DefaultBuffering,
	Retry:       DefaultRetry,
	MaxInFlight: 0,
}

// DefaultConfig is the default top level.
var DefaultConfig = Config{
	Listen:          "127.0.0.1:4573",
	AdminListen:     "",
	DataDir:         "./data",
	Region:          "us-east-1",
	AccountID:       "000000000000",
	Log:             DefaultLog,
	ShutdownTimeout: 30 * time.Second,
	Buffer:          DefaultBuffer,
	Audit:           DefaultAudit,
}
