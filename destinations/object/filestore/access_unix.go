//go:build unix

package filestore

import "golang.org/x/sys/unix"

// writable reports whether the process may create entries in dir.
func writable(dir string) error { return unix.Access(dir, unix.W_OK|unix.X_OK) }
