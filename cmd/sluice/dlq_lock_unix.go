//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockReplay takes the replay lock of a stream (<data_dir>/dlq/<stream>.lock,
// flock): one replay of a stream at a time. The lock goes with the
// process, so a killed replay leaves nothing to clean up.
func lockReplay(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("replay lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("replay lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another sluice dlq replay of this stream is running (it holds %s)", path)
		}
		return nil, fmt.Errorf("replay lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}
