package filestore

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/sluice-dev/sluice/pipeline"
)

var errNotDir = syscall.ENOTDIR

// Error is a failed file operation with a Firehose-style error code
// (ErrorCode), used by the runner in dead letters.
type Error struct {
	Op   string
	Path string
	Code string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("file %s %s: %v", e.Op, e.Path, e.Err) }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the error code written into dead letters.
func (e *Error) ErrorCode() string { return e.Code }

// classify wraps an I/O error with its code and marks it retryable unless it
// is a configuration problem that no retry will fix. A full disk, a quota,
// an I/O error or a read-only remount are retryable: the data stays in the
// buffer until the disk recovers. Errors not recognised are retryable too;
// the runner's retry duration bounds them.
func classify(op, path string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err // already classified
	}
	code, retryable := codeOf(err)
	fe := &Error{Op: op, Path: path, Code: code, Err: err}
	if retryable {
		return pipeline.Retryable(fe)
	}
	return fe
}

func codeOf(err error) (code string, retryable bool) {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "File.NoSpace", true
	case errors.Is(err, syscall.EIO):
		return "File.IOError", true
	case errors.Is(err, syscall.EROFS):
		return "File.ReadOnlyFileSystem", true
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR),
		errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.ELOOP),
		errors.Is(err, syscall.EINVAL):
		return "File.InvalidPath", false
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, fs.ErrPermission):
		return "File.AccessDenied", false
	default:
		return "File.WriteFailed", true
	}
}
