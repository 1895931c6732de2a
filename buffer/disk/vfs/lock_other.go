//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package vfs

import (
	"errors"
	"fmt"
	"runtime"
)

// FileLock is an exclusive file lock; this platform has none.
type FileLock struct{}

var errNoLocks = errors.New("file locks are not supported on " + runtime.GOOS)

// LockFile fails: this platform has no flock.
func LockFile(name, _ string) (*FileLock, error) {
	return nil, fmt.Errorf("lock %s: %w", name, errNoLocks)
}

// TryLockExisting fails: this platform has no flock.
func TryLockExisting(name string) (*FileLock, bool, error) {
	return nil, false, fmt.Errorf("lock %s: %w", name, errNoLocks)
}

// Unlock does nothing.
func (l *FileLock) Unlock() error { return nil }
