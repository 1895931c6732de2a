package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

const iovMax = 1024

func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// pwritev writes bufs at off with pwritev(2), finishing partial writes.
func pwritev(f *os.File, bufs [][]byte, off int64) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return writevFallback(f, bufs, off)
	}
	total := 0
	var werr error
	// Copy the slice headers: partial writes shorten them.
	iov := append([][]byte(nil), bufs...)
	for werr == nil {
		for len(iov) > 0 && len(iov[0]) == 0 {
			iov = iov[1:]
		}
		if len(iov) == 0 {
			break
		}
		chunk := iov
		if len(chunk) > iovMax {
			chunk = chunk[:iovMax]
		}
		var n int
		if err := rc.Control(func(fd uintptr) {
			for {
				n, werr = unix.Pwritev(int(fd), chunk, off)
				if werr != unix.EINTR {
					return
				}
			}
		}); err != nil {
			return total, err
		}
		if werr != nil {
			break
		}
		total += n
		off += int64(n)
		for n > 0 && len(iov) > 0 {
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			} else {
				iov[0] = iov[0][n:]
				n = 0
			}
		}
	}
	if werr != nil {
		return total, &os.PathError{Op: "pwritev", Path: f.Name(), Err: werr}
	}
	return total, nil
}
