//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package vfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FileLock is an exclusive flock(2) lock on a file, held until Unlock or
// the end of the process. flock locks belong to an open file description:
// two LockFile calls in one process conflict like two processes do.
type FileLock struct {
	f *os.File
}

// LockFile takes the exclusive lock of file name without waiting, creating
// it if needed, and writes "pid <pid> <owner>" into it. When another
// process (or another LockFile of this one) holds it, it returns a
// *LockedError naming the holder from the file's content.
func LockFile(name, owner string) (*FileLock, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := readHolder(f)
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &LockedError{Path: name, Holder: holder}
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	desc := "pid " + strconv.Itoa(os.Getpid())
	if owner != "" {
		desc += " " + owner
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(desc+"\n"), 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: write holder: %w", name, err)
	}
	return &FileLock{f: f}, nil
}

// TryLockExisting takes the lock of an existing file briefly, without
// creating or writing anything: ok is false when name does not exist (no
// one ever locked it). The caller must Unlock.
func TryLockExisting(name string) (l *FileLock, ok bool, err error) {
	f, err := os.OpenFile(name, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := flock(f, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		holder := readHolder(f)
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, &LockedError{Path: name, Holder: holder}
		}
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	return &FileLock{f: f}, true, nil
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), how)
			if ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

func readHolder(f *os.File) string {
	b := make([]byte, 512)
	n, _ := f.ReadAt(b, 0)
	if s := strings.TrimSpace(string(b[:n])); s != "" {
		return s
	}
	return "unknown"
}

// Unlock clears the holder's description (when the lock was taken by
// LockFile) and releases the lock. Unlocking twice is harmless.
func (l *FileLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Best effort: a stale description is only informative.
	_ = f.Truncate(0)
	if err := f.Close(); err != nil {
		return fmt.Errorf("unlock %s: %w", f.Name(), err)
	}
	return nil
}
