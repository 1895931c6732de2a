package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
)

const (
	cursorName    = "cursor"
	cursorTmpName = "cursor.tmp"
	cursorMagic   = "SLCU"
	cursorVersion = 1
	cursorSize    = 4 + 4 + 8 + 8 + 8 + 8 + 4
)

// cursorState is the content of the cursor file.
type cursorState struct {
	logID     [8]byte
	committed pipeline.Position
	inflight  pipeline.BatchID
}

var errBadCursor = errors.New("corrupt cursor file")

func (c cursorState) encode() []byte {
	b := make([]byte, cursorSize)
	copy(b[0:4], cursorMagic)
	b[4] = cursorVersion
	copy(b[8:16], c.logID[:])
	binary.LittleEndian.PutUint64(b[16:24], uint64(c.committed))
	binary.LittleEndian.PutUint64(b[24:32], uint64(c.inflight.First))
	binary.LittleEndian.PutUint64(b[32:40], uint64(c.inflight.End))
	binary.LittleEndian.PutUint32(b[40:44], crc32.Checksum(b[:40], frame.Table()))
	return b
}

func decodeCursor(b []byte) (cursorState, error) {
	var c cursorState
	if len(b) != cursorSize || string(b[0:4]) != cursorMagic {
		return c, fmt.Errorf("%w: bad size or magic", errBadCursor)
	}
	if b[4] != cursorVersion {
		return c, fmt.Errorf("%w: unknown version %d", errBadCursor, b[4])
	}
	if crc32.Checksum(b[:40], frame.Table()) != binary.LittleEndian.Uint32(b[40:44]) {
		return c, fmt.Errorf("%w: crc mismatch", errBadCursor)
	}
	copy(c.logID[:], b[8:16])
	c.committed = pipeline.Position(binary.LittleEndian.Uint64(b[16:24]))
	c.inflight.First = pipeline.Position(binary.LittleEndian.Uint64(b[24:32]))
	c.inflight.End = pipeline.Position(binary.LittleEndian.Uint64(b[32:40]))
	return c, nil
}

// readCursor reads the cursor file; it returns os.ErrNotExist when absent.
func (l *Log) readCursor() (cursorState, error) {
	f, err := l.fs.OpenFile(filepath.Join(l.dir, cursorName), os.O_RDONLY, 0)
	if err != nil {
		return cursorState{}, err
	}
	defer f.Close()
	b := make([]byte, cursorSize+1)
	n, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return cursorState{}, fmt.Errorf("read cursor: %w", err)
	}
	return decodeCursor(b[:n])
}

// writeCursor replaces the cursor file atomically and durably: temporary
// file, fsync, rename, fsync of the directory.
func (l *Log) writeCursor(c cursorState) error {
	tmp := filepath.Join(l.dir, cursorTmpName)
	f, err := l.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write cursor: %w", err)
	}
	_, err = f.WriteAt(c.encode(), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.fs.Rename(tmp, filepath.Join(l.dir, cursorName))
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		return fmt.Errorf("write cursor: %w", err)
	}
	return nil
}
