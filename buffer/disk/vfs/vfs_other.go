//go:build !linux

package vfs

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

func pwritev(f *os.File, bufs [][]byte, off int64) (int, error) {
	return writevFallback(f, bufs, off)
}
