package config

import "time"

// Audit outputs (the audit block's output).
const (
	AuditStderr = "stderr"
	AuditFile   = "file"
)

// Audit configures the audit log of API calls: one JSON line per call.
// Output "" (no audit block) turns it off.
type Audit struct {
	// Output is AuditStderr or AuditFile.
	Output string `yaml:"output"`
	// Path is the file (output file), relative to data_dir when relative.
	Path string `yaml:"path"`
	// MaxFileBytes rotates the file when a write would take it over this
	// size (0: never); MaxFiles old files are kept.
	MaxFileBytes Size `yaml:"max_file_bytes"`
	MaxFiles     int  `yaml:"max_files"`
	// Sample is the fraction of successful calls written (errors always are).
	Sample float64 `yaml:"sample"`
	// QueueLength bounds the entries waiting to be written.
	QueueLength int `yaml:"queue_length"`
	// OnFull is "block" (wait up to BlockTimeout, then drop) or "drop".
	OnFull       string        `yaml:"on_full"`
	BlockTimeout time.Duration `yaml:"block_timeout"`
}

// DefaultAudit is the default audit block (off until output is set).
var DefaultAudit = Audit{
	Path:         "sluice-audit.log",
	MaxFileBytes: 100 * MiB,
	MaxFiles:     5,
	Sample:       1,
	QueueLength:  4096,
	OnFull:       "block",
	BlockTimeout: 100 * time.Millisecond,
}

func (d *decoder) validateAudit(a *Audit, top Pos) {
	written := d.written(a) || d.written(&a.Path) || d.written(&a.MaxFileBytes) || d.written(&a.MaxFiles) || d.written(&a.Sample) ||
		d.written(&a.QueueLength) || d.written(&a.OnFull) || d.written(&a.BlockTimeout)
	switch a.Output {
	case "":
		if written {
			d.fail(&a.Output, d.at(a, top), "audit.output", "is required in an audit block: stderr or file")
		}
	case AuditStderr:
		if d.written(&a.Path) || d.written(&a.MaxFileBytes) || d.written(&a.MaxFiles) {
			d.fail(&a.Path, top, "audit.path", "path, max_file_bytes and max_files are for output file")
		}
	case AuditFile:
		if a.Path == "" {
			d.fail(&a.Path, top, "audit.path", "must not be empty with output file")
		}
	default:
		d.fail(&a.Output, top, "audit.output", "invalid output %q (want stderr or file)", a.Output)
	}
	if a.MaxFileBytes < 0 || a.MaxFileBytes != 0 && a.MaxFileBytes < 4*KiB {
		d.fail(&a.MaxFileBytes, top, "audit.max_file_bytes", "must be at least 4KiB (or 0: never rotate), got %s", a.MaxFileBytes)
	}
	if a.MaxFiles < 1 || a.MaxFiles > 1000 {
		d.fail(&a.MaxFiles, top, "audit.max_files", "must be 1 to 1000, got %d", a.MaxFiles)
	}
	if a.Sample < 0 || a.Sample > 1 {
		d.fail(&a.Sample, top, "audit.sample", "must be between 0 and 1, got %v", a.Sample)
	}
	if a.QueueLength < 1 || a.QueueLength > 1<<20 {
		d.fail(&a.QueueLength, top, "audit.queue_length", "must be 1 to 1048576, got %d", a.QueueLength)
	}
	if !oneOf(a.OnFull, "block", "drop") {
		d.fail(&a.OnFull, top, "audit.on_full", "invalid value %q (want block or drop)", a.OnFull)
	}
	if a.BlockTimeout <= 0 || a.BlockTimeout > 10*time.Second {
		d.fail(&a.BlockTimeout, top, "audit.block_timeout", "must be positive and at most 10s, got %s", a.BlockTimeout)
	}
}
